-- inputs.md customer_merges: each source customer belongs to the calculated customer at the end of
-- its merge chain. Cycles are quarantined during validation; the depth bound only guards.
with recursive customers as (
    select * from {{ ref('stg_customers') }}
),

merges as (
    select * from {{ ref('stg_customer_merges') }}
),

chains as (
    select
        data_source,
        external_id,
        data_source as root_data_source,
        external_id as root_external_id,
        0 as depth
    from customers
    union all
    select
        chains.data_source,
        chains.external_id,
        merges.into_source as root_data_source,
        merges.into_external_id as root_external_id,
        chains.depth + 1 as depth
    from chains
    inner join merges
        on
            chains.root_data_source = merges.from_source
            and chains.root_external_id = merges.from_external_id
    where chains.depth < 100
),

deepest as (
    select
        chains.*,
        row_number() over (partition by data_source, external_id order by depth desc) as depth_rank
    from chains
),

final as (
    select
        data_source,
        external_id as customer_external_id,
        root_data_source,
        root_external_id,
        {{ dbt.hash(dbt.concat(['root_data_source', "'/'", 'root_external_id'])) }} as customer_id
    from deepest
    where depth_rank = 1
)

select * from final
