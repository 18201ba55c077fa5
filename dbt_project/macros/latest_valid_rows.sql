{#-
    The rows of one raw input table that passed validation, one per key: the latest batch wins
    (spec/inputs.md: re-importing a key replaces it). Rows with no key value fall back to
    (fallback columns, position among the batch's rows with the same fallback values).
-#}
{% macro latest_valid_rows(file, key, fallback_key=[]) %}
    {%- set key_set -%}
        {%- for column in key %}{{ clean_text('raw_rows.' ~ column) }} is not null{% if not loop.last %} and {% endif %}{% endfor -%}
    {%- endset -%}
    select *
    from (
        select
            positioned.*,
            row_number() over (
                partition by
                    positioned.data_source
                    {%- for column in key %},
                    case when {{ key_set | replace('raw_rows.', 'positioned.') }} then {{ clean_text('positioned.' ~ column) }} end
                    {%- endfor %}
                    {%- for column in fallback_key %},
                    case when not ({{ key_set | replace('raw_rows.', 'positioned.') }}) then {{ clean_text('positioned.' ~ column) }} end
                    {%- endfor %}
                    {%- if fallback_key %},
                    case when not ({{ key_set | replace('raw_rows.', 'positioned.') }}) then positioned.position_in_batch end
                    {%- endif %}
                order by positioned.batch_seq desc, positioned.line asc
            ) as version_rank
        from (
            select
                raw_rows.*,
                row_number() over (
                    partition by raw_rows.batch_id
                    {%- for column in fallback_key %}, {{ clean_text('raw_rows.' ~ column) }}{% endfor %}
                    order by raw_rows.line
                ) as position_in_batch,
                quarantined.batch_id as quarantined_batch_id
            from {{ source('raw', file) }} as raw_rows
            left join {{ source('quarantine', file) }} as quarantined
                on raw_rows.batch_id = quarantined.batch_id and raw_rows.line = quarantined.line
        ) as positioned
        where positioned.quarantined_batch_id is null
    ) as versions
    where versions.version_rank = 1
{% endmacro %}
