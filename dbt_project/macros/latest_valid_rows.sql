{#-
    The rows of one raw input table that passed validation, one per key: the latest batch wins
    (spec/inputs.md: re-importing a key replaces it). Rows with no key value fall back to
    (fallback columns, position among the batch's rows with the same fallback values).

    `incremental`: the staging model is a dbt incremental model (see in_changed_partition below); the
    account-wide files (plans, rates, merges) stay tables, rebuilt whole.

    The versions are ranked on a narrow projection (batch, line, keys) and the winners joined back
    to the raw rows by (batch_id, line): ranking the full-width rows costs twice the time and
    several times the memory at millions of rows.
-#}
{% macro latest_valid_rows(file, key, fallback_key=[], scope_key=none, incremental=true) %}
    {%- if incremental %}{{ staging_incremental_config(file, key, fallback_key, scope_key) }}{% endif -%}
    {%- set key_set = all_set(key, 'raw_rows') -%}
    select raw_rows.*
    from {{ source('raw', file) }} as raw_rows
    inner join (
        select
            versions.batch_id,
            versions.line
        from (
            select
                candidates.batch_id,
                candidates.line,
                row_number() over (
                    partition by
                        candidates.data_source
                        {%- for column in key %},
                        candidates.key_{{ loop.index }}
                        {%- endfor %}
                        {%- for column in fallback_key %},
                        candidates.fallback_{{ loop.index }}
                        {%- endfor %}
                        {%- if fallback_key %},
                        candidates.position_in_batch
                        {%- endif %}
                    order by candidates.batch_seq desc, candidates.line asc
                ) as version_rank
            from (
                select
                    raw_rows.data_source,
                    raw_rows.batch_id,
                    raw_rows.batch_seq,
                    raw_rows.line
                    {%- for column in key %},
                    case when {{ key_set }} then {{ clean_text('raw_rows.' ~ column) }} end as key_{{ loop.index }}
                    {%- endfor %}
                    {%- for column in fallback_key %},
                    case when not ({{ key_set }}) then {{ clean_text('raw_rows.' ~ column) }} end as fallback_{{ loop.index }}
                    {%- endfor %}
                    {%- if fallback_key %},
                    case when not ({{ key_set }}) then row_number() over (
                        partition by coalesce(batches.first_batch_id, raw_rows.batch_id)
                        {%- for column in fallback_key %}, {{ clean_text('raw_rows.' ~ column) }}{% endfor %}
                        order by raw_rows.line
                    ) end as position_in_batch
                    {%- endif %}
                from {{ source('raw', file) }} as raw_rows
                {%- if fallback_key %}
                {#- an appended batch continues its file: positions count from the file's first batch #}
                left join {{ source('raw', 'import_batches') }} as batches
                    on batches.batch_id = raw_rows.batch_id
                {%- endif %}
                {%- if incremental and incremental_scope_build() %}
                {#- whole partitions only: a keyless row's position counts the rows sharing its fallback #}
                where {{ in_changed_partition(file, key, fallback_key, scope_key, 'raw_rows') }}
                {%- endif %}
            ) as candidates
            {#- positions count every row of the batch, so a corrected re-send keeps its slot #}
            where not exists (
                select 1
                from {{ source('quarantine', file) }} as quarantined
                where quarantined.batch_id = candidates.batch_id and quarantined.line = candidates.line
            )
        ) as versions
        where versions.version_rank = 1
    ) as latest
        on raw_rows.batch_id = latest.batch_id and raw_rows.line = latest.line
{% endmacro %}

{#-
    Incremental builds of a staging model recompute only the partitions (keys) a row changed since the
    last build: a row of a newer batch, or an older row whose verdict validation checked again
    (quarantine._verdict_changes, openmrr.revalidate). `scope_key` (default: the key) may be a prefix
    of the key whose staging values are plain text (cancellations' cancelled_at is a timestamp there);
    keyless rows are recomputed by their fallback values.
-#}
{% macro changed_row(file, alias) -%}
    {%- set scope = var('incremental') -%}
    (
        {{ alias }}.batch_seq > {{ scope['since_batch_seq'] | int }}
        or exists (
            select 1
            from {{ api.Relation.create(database=target.database, schema='quarantine', identifier='_verdict_changes') }} as changes
            where
                changes.validated_at > cast({{ sql_string(scope['revalidated_after']) }} as timestamp)
                and changes.file = {{ sql_string(file) }}
                and (changes.batch_id = '*' or (changes.batch_id = {{ alias }}.batch_id and changes.line = {{ alias }}.line))
        )
    )
{%- endmacro %}

{#- A raw row's id as staging holds it (clean=true), or a staging row's id as it is. -#}
{% macro id_value(alias, column, clean=true) -%}
    {%- if clean %}{{ clean_text(alias ~ '.' ~ column) }}{% else %}{{ alias }}.{{ column }}{% endif -%}
{%- endmacro %}

{% macro all_set(columns, alias, clean=true) -%}
    {%- for column in columns %}
        {{- id_value(alias, column, clean) }} is not null
        {%- if not loop.last %} and {% endif %}
    {%- endfor %}
{%- endmacro %}

{#- `alias` is a raw row (clean=true) or a staging row (its key columns already cleaned). -#}
{% macro in_changed_partition(file, key, fallback_key, scope_key, alias, clean=true) -%}
    {%- set scope_columns = scope_key or key -%}
    {#- account-level files (tags, custom attributes) name the source in their key; staging drops data_source -#}
    {%- set by_source = file not in ('tags', 'custom_attributes') -%}
    (
        ({{ all_set(key, alias, clean) }}) and exists (
            select 1
            from {{ source('raw', file) }} as changed
            where
                {{ changed_row(file, 'changed') }}
                and {{ all_set(key, 'changed') }}
                {%- if by_source %}
                and changed.data_source = {{ alias }}.data_source
                {%- endif %}
                {%- for column in scope_columns %}
                and {{ clean_text('changed.' ~ column) }} = {{ id_value(alias, column, clean) }}
                {%- endfor %}
        )
        {%- if fallback_key %}
        or (not ({{ all_set(key, alias, clean) }}) and exists (
            select 1
            from {{ source('raw', file) }} as changed
            where
                {{ changed_row(file, 'changed') }}
                and not ({{ all_set(key, 'changed') }})
                {%- if by_source %}
                and changed.data_source = {{ alias }}.data_source
                {%- endif %}
                {%- for column in fallback_key %}
                and {{ clean_text('changed.' ~ column) }} = {{ id_value(alias, column, clean) }}
                {%- endfor %}
        ))
        {%- endif %}
    )
{%- endmacro %}

{#- The config of an incremental staging model: its pre-hook deletes the changed partitions' rows. -#}
{% macro staging_incremental_config(file, key, fallback_key=[], scope_key=none) -%}
    {{ append_after_delete_config("{{ delete_changed_partitions('" ~ file ~ "', " ~ key | tojson ~ ", "
        ~ fallback_key | tojson ~ ", " ~ (scope_key | tojson if scope_key else 'none') ~ ") }}") }}
{%- endmacro %}

{% macro delete_changed_partitions(file, key, fallback_key, scope_key) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        {%- if var('incremental', none) is not none %}
        where {{ in_changed_partition(file, key, fallback_key, scope_key, this.identifier, clean=false) }}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
