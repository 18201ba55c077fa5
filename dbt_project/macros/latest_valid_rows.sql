{#-
    The rows of one raw input table that passed validation, one per key: the latest batch wins
    (spec/inputs.md: re-importing a key replaces it). Rows with no key value fall back to
    (fallback columns, position among the batch's rows with the same fallback values).

    The versions are ranked on a narrow projection (batch, line, keys) and the winners joined back
    to the raw rows by (batch_id, line): ranking the full-width rows costs twice the time and
    several times the memory at millions of rows.
-#}
{% macro latest_valid_rows(file, key, fallback_key=[]) %}
    {%- set key_set -%}
        {%- for column in key %}{{ clean_text('raw_rows.' ~ column) }} is not null{% if not loop.last %} and {% endif %}{% endfor -%}
    {%- endset -%}
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
