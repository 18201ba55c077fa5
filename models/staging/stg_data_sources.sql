{{ config(alias='data_sources') }}

-- datasets.md source.data_sources: one row per data source with its files and last import.
with import_batches as (
    select * from {{ source('raw', 'import_batches') }}
),

import_reports as (
    select * from {{ source('reports', 'import_reports') }}
),

batches as (
    select
        data_source,
        count(distinct file) as file_count,
        max(loaded_at) as last_import_at
    from import_batches
    where data_source is not null
    group by data_source
),

reports as (
    select
        data_source,
        cast(sum(rows_read) as bigint) as rows_read,
        cast(sum(rows_quarantined) as bigint) as rows_quarantined
    from import_reports
    where data_source is not null
    group by data_source
),

final as (
    select
        batches.data_source as name,
        batches.file_count,
        batches.last_import_at,
        coalesce(reports.rows_read, 0) as rows_read,
        coalesce(reports.rows_quarantined, 0) as rows_quarantined,
        case when coalesce(reports.rows_quarantined, 0) > 0 then 'imported_with_quarantine' else 'imported' end
            as import_status
    from batches
    left join reports on batches.data_source = reports.data_source
)

select * from final
