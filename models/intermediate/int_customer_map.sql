-- inputs.md customer_merges: each source customer belongs to the calculated customer at the end of
-- its merge chain. Cycles are quarantined during validation; the depth bound only guards.
with recursive customers as (
    select * from {{ ref('stg_customers') }}
),

customer_merges as (
    select * from {{ ref('stg_customer_merges') }}
),

chains as (
    select
        data_source,
        external_id,
        -- both terms of the recursion name the text type: warehouses whose raw text has a length
        -- (Redshift's varchar(65535)) reject a recursive column whose type changes between the terms
        cast(data_source as {{ dbt.type_string() }}) as root_data_source,
        cast(external_id as {{ dbt.type_string() }}) as root_external_id,
        0 as merge_depth
    from customers
    union all
    select
        chains.data_source,
        chains.external_id,
        cast(customer_merges.into_source as {{ dbt.type_string() }}) as root_data_source,
        cast(customer_merges.into_external_id as {{ dbt.type_string() }}) as root_external_id,
        chains.merge_depth + 1 as merge_depth
    from chains
    inner join customer_merges
        on
            chains.root_data_source = customer_merges.from_source
            and chains.root_external_id = customer_merges.from_external_id
    where chains.merge_depth < 100
),

deepest as (
    select
        *,
        row_number() over (partition by data_source, external_id order by merge_depth desc) as depth_rank
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
