{#-
    The rows of one raw input table that passed validation, one per key: the latest batch wins
    (spec/inputs.md: re-importing a key replaces it). Rows with no key value fall back to
    (fallback columns, position among the batch's rows with the same fallback values).

    `incremental`: the staging model is a dbt incremental model (see changed_partition_rows below); the
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
                {%- if incremental and incremental_scope_build() %}
                {#- whole partitions only: a keyless row's position counts the rows sharing its fallback #}
                from ({{ changed_partition_rows(file, key, fallback_key, scope_key) }}) as raw_rows
                {%- else %}
                from {{ source('raw', file) }} as raw_rows
                {%- endif %}
                {%- if fallback_key %}
                {#- an appended batch continues its file: positions count from the file's first batch #}
                left join {{ source('raw', 'import_batches') }} as batches
                    on batches.batch_id = raw_rows.batch_id
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

    `changed_values` lists `expressions` of the changed raw rows that meet `condition`, once each. Each
    kind of change is its own select: the newer batches are the raw table's last row groups (a filter on
    batch_seq alone skips the others), re-checked rows join by (batch, line), and a re-checked file takes
    all its rows. A single filter with a correlated EXISTS made the warehouse evaluate it on every raw
    row (and, in the delete and the candidates below, on every row again per changed key).
-#}
{% macro changed_values(file, expressions, condition) -%}
    {%- set scope = var('incremental') -%}
    {%- set verdict_changes = api.Relation.create(
        database=target.database, schema='quarantine', identifier='_verdict_changes') -%}
    {%- set rechecked -%}
        changes.validated_at > cast({{ sql_string(scope['revalidated_after']) }} as timestamp)
        and changes.file = {{ sql_string(file) }}
    {%- endset -%}
    {%- set columns -%}
        {%- for expression in expressions %}{{ expression }} as value_{{ loop.index }}{% if not loop.last %}, {% endif %}{% endfor -%}
    {%- endset -%}
    select {{ columns }}
    from {{ source('raw', file) }} as changed
    where changed.batch_seq > {{ scope['since_batch_seq'] | int }} and {{ condition }}
    union
    select {{ columns }}
    from {{ source('raw', file) }} as changed
    inner join {{ verdict_changes }} as changes
        on changes.batch_id = changed.batch_id and changes.line = changed.line
    where {{ rechecked }} and {{ condition }}
    union
    select {{ columns }}
    from {{ source('raw', file) }} as changed
    where
        {{ condition }}
        and exists (select 1 from {{ verdict_changes }} as changes where {{ rechecked }} and changes.batch_id = '*')
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

{#-
    The raw rows of the partitions that changed: keyed rows by their key (or scope_key), keyless rows by
    their fallback values. Joins to the (few) changed partitions, which the warehouse hashes; an EXISTS
    correlated on cleaned ids made it de-duplicate every raw row's ids first.
-#}
{% macro changed_partition_rows(file, key, fallback_key, scope_key) -%}
    select raw_rows.*
    from {{ source('raw', file) }} as raw_rows
    inner join (
        {{ changed_values(file, partition_values(file, scope_key or key, 'changed'), all_set(key, 'changed')) }}
    ) as changed_partitions
        on {{ partition_matches(file, scope_key or key, 'raw_rows') }}
    where {{ all_set(key, 'raw_rows') }}
    {%- if fallback_key %}
    union all
    select raw_rows.*
    from {{ source('raw', file) }} as raw_rows
    inner join (
        {{ changed_values(file, partition_values(file, fallback_key, 'changed'), 'not (' ~ all_set(key, 'changed') ~ ')') }}
    ) as changed_partitions
        on {{ partition_matches(file, fallback_key, 'raw_rows') }}
    where not ({{ all_set(key, 'raw_rows') }})
    {%- endif %}
{%- endmacro %}

{#- A staging row (key columns already cleaned) whose partition changed: the delete of an incremental build. -#}
{% macro in_changed_partition(file, key, fallback_key, scope_key, alias) -%}
    (
        ({{ all_set(key, alias, clean=false) }}) and {{ partition_changed(
            file, scope_key or key, all_set(key, 'changed'), alias
        ) }}
        {%- if fallback_key %}
        or (not ({{ all_set(key, alias, clean=false) }}) and {{ partition_changed(
            file, fallback_key, 'not (' ~ all_set(key, 'changed') ~ ')', alias
        ) }})
        {%- endif %}
    )
{%- endmacro %}

{#- account-level files (tags, custom attributes) name the source in their key; staging drops data_source -#}
{% macro partition_values(file, columns, alias, clean=true) -%}
    {%- set values = [alias ~ '.data_source'] if file not in ('tags', 'custom_attributes') else [] -%}
    {%- for column in columns %}{% do values.append(id_value(alias, column, clean)) %}{% endfor -%}
    {{ return(values) }}
{%- endmacro %}

{#- `alias`'s partition values equal those of `changed_partitions` (a changed_values select). -#}
{% macro partition_matches(file, columns, alias, clean=true) -%}
    {%- for value in partition_values(file, columns, alias, clean) %}
        changed_partitions.value_{{ loop.index }} = {{ value }}{% if not loop.last %} and{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- Some changed raw row meeting `condition` has the partition values of `alias`, a staging row. -#}
{% macro partition_changed(file, columns, condition, alias) -%}
    exists (
        select 1
        from (
            {{ changed_values(file, partition_values(file, columns, 'changed'), condition) }}
        ) as changed_partitions
        where {{ partition_matches(file, columns, alias, clean=false) }}
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
        where {{ in_changed_partition(file, key, fallback_key, scope_key, this.identifier) }}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
