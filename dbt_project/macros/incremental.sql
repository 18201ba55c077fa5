{#-
    Incremental builds recompute only what new data can change (docs/scale.md): the subscriptions in
    int_touched_subscriptions and the calculated customers in int_touched_customers. OpenMRR passes
    the var `incremental` ({"since_batch_seq": N, "previous_as_of": "..."}) when the previous build's
    state allows it, and `--full-refresh` otherwise (openmrr/incremental.py).

    An incremental model deletes the rows of its touched scope in a pre-hook, then appends the
    recomputed rows of that scope. Without the var (dbt run by hand on an existing table) the pre-hook
    deletes every row and the model appends all of them: slower, never stale.
-#}

{#- True when this model recomputes only the touched scope (the var first: `dbt compile
    --no-introspect` for a warehouse must not look the table up). -#}
{% macro incremental_scope_build() -%}
    {{ return(var('incremental', none) is not none and is_incremental()) }}
{%- endmacro %}

{#- The pre-hook of an incremental model: remove the rows its run recomputes. The subquery names the
    table by its bare name, which every warehouse accepts in a DELETE (aliases are not portable). -#}
{% macro delete_touched(scope, columns) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        {%- if var('incremental', none) is not none %}
        where exists (
            select 1
            from {{ ref(scope) }} as touched
            where
                {%- for column in columns %}
                touched.{{ column }} = {{ this.identifier }}.{{ column }}{% if not loop.last %} and{% endif %}
                {%- endfor %}
        )
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#-
    An import CTE's query: every row of `model`, or in an incremental build only the rows of the touched
    scope. `columns` names the scope's columns, which the model shares, or maps each scope column to
    the model's name for it.
-#}
{% macro touched_rows(model, scope, columns) -%}
    {%- if incremental_scope_build() -%}
        {%- set pairs = {} -%}
        {%- if columns is mapping %}{% do pairs.update(columns) %}{% else -%}
            {%- for column in columns %}{% do pairs.update({column: column}) %}{% endfor -%}
        {%- endif -%}
    select * from {{ ref(model) }} as scoped
    where exists (
        select 1
        from {{ ref(scope) }} as touched
        where
            {%- for scope_column, column in pairs.items() %}
            touched.{{ scope_column }} = scoped.{{ column }}{% if not loop.last %} and{% endif %}
            {%- endfor %}
    )
    {%- else -%}
    select * from {{ ref(model) }}
    {%- endif %}
{%- endmacro %}

{#-
    The config every incremental model shares: append after deleting its touched scope. The scope is
    ref'd here, outside any condition, so dbt records the dependency when it parses the model.
-#}
{% macro incremental_config(scope, columns) -%}
    {%- do ref(scope) -%}
    {{ append_after_delete_config("{{ delete_touched('" ~ scope ~ "', " ~ columns | tojson ~ ") }}") }}
{%- endmacro %}

{#- An incremental model whose pre-hook (a DELETE) removes the rows its run appends again. -#}
{% macro append_after_delete_config(delete_hook) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy=append_strategy(),
        on_schema_change='fail',
        pre_hook=[delete_hook]
    ) }}
{%- endmacro %}

{#- The as_of of the previous build (a full build: this build's own, so nothing lies between them). -#}
{% macro previous_as_of() -%}
    cast({{ sql_string((var("incremental", none) or {}).get("previous_as_of", var("as_of"))) }} as {{ timestamp_type() }})
{%- endmacro %}

{#- A moment this build's as_of reaches and the previous build's did not. -#}
{% macro reached_since_previous_as_of(column) -%}
    ({{ column }} > {{ previous_as_of() }} and {{ column }} <= {{ as_of() }})
{%- endmacro %}

{#- Appending rows: dbt-bigquery has no `append` strategy; its `merge` without a unique key inserts. -#}
{% macro append_strategy() -%}
    {{ return('merge' if target.type == 'bigquery' else 'append') }}
{%- endmacro %}

{#-
    Every raw version of the rows that link customers, invoices and subscriptions, ids cleaned like
    staging's: the touched-scope models follow a re-sent key through all its versions.
-#}
{% macro raw_invoice_versions() -%}
    select
        data_source,
        batch_seq,
        {{ clean_text('external_id') }} as invoice_external_id,
        {{ clean_text('customer_external_id') }} as customer_external_id
    from {{ source('raw', 'invoices') }}
{%- endmacro %}

{#- line items and transactions: their own id, their invoice and (line items) their subscription -#}
{% macro raw_invoice_row_versions(file) -%}
    select
        data_source,
        batch_seq,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('invoice_external_id') }} as invoice_external_id,
        {% if file == 'line_items' -%}
            {{ clean_text('subscription_external_id') }}
        {%- else -%}
            cast(null as {{ dbt.type_string() }})
        {%- endif %} as subscription_external_id
    from {{ source('raw', file) }}
{%- endmacro %}

{#- subscription events and cancellations: the rows that name a subscription's customer -#}
{% macro raw_subscription_versions() -%}
    select
        data_source,
        batch_seq,
        {{ clean_text('external_id') }} as external_id,
        {{ clean_text('subscription_external_id') }} as subscription_external_id,
        {{ clean_text('customer_external_id') }} as customer_external_id
    from {{ source('raw', 'subscription_events') }}
    union all
    select
        data_source,
        batch_seq,
        cast(null as {{ dbt.type_string() }}) as external_id,
        {{ clean_text('subscription_external_id') }} as subscription_external_id,
        {{ clean_text('customer_external_id') }} as customer_external_id
    from {{ source('raw', 'cancellations') }}
{%- endmacro %}
