-- mrr-rules §3: each subscription's MRR states in its billing currency: one row per line item
-- that sets MRR, quantity and plan, and one per churn (MRR 0). States after as_of are left out.
-- The ordering and running sums work on a narrow projection of each item (every window sorts its
-- input); the item's descriptive columns join back once, by (data_source, batch_seq, line).
{{ incremental_config('int_touched_subscriptions', ['data_source', 'subscription_external_id']) }}
{%- set item_order -%}
    partition by data_source, subscription_external_id
    order by service_period_start, event_order nulls last, batch_seq, line
{%- endset %}

with line_item_mrr as (
    {{ touched_rows(
        'int_line_item_mrr',
        'int_touched_subscriptions',
        ['data_source', 'subscription_external_id']
    ) }}
),

cancellations as (
    {{ touched_rows(
        'int_subscription_cancellations',
        'int_touched_subscriptions',
        ['data_source', 'subscription_external_id']
    ) }}
),

-- §1: a subscription starts at its first item whose amount net of tax is above zero; whether an item
-- is at or after that start shares the sort of the item sequence (one window pass)
ordered_items as (
    select
        data_source,
        subscription_external_id,
        batch_seq,
        line,
        service_period_start,
        service_period_end,
        event_order,
        prorated,
        proration_type,
        quantity,
        mrr_item,
        row_number() over ({{ item_order }}) as item_seq,
        max(case when amount - tax_amount > 0 then 1 else 0 end) over (
            {{ item_order }} rows between unbounded preceding and current row
        ) as has_started,
        coalesce(max(case when amount - tax_amount > 0 then 1 else 0 end) over (
            {{ item_order }} rows between unbounded preceding and 1 preceding
        ), 0) as started_before
    from line_item_mrr
),

started_items as (
    select
        *,
        lead(service_period_start) over (
            partition by data_source, subscription_external_id order by item_seq
        ) as next_item_start,
        max(service_period_end) over (
            partition by data_source, subscription_external_id
            order by item_seq rows between unbounded preceding and current row
        ) as paid_through
    from ordered_items
    where has_started = 1
),

-- a cancellation belongs to the item whose stretch [start, next item start) holds it;
-- an item at the same moment as a cancellation is applied first
item_cancellations as (
    select
        started_items.data_source,
        started_items.subscription_external_id,
        started_items.item_seq,
        cancellations.cancelled_at as cancellation_at,
        cancellations.file as cancellation_file,
        cancellations.line as cancellation_line,
        cancellations.batch_seq as cancellation_batch_seq,
        row_number() over (
            partition by started_items.data_source, started_items.subscription_external_id, started_items.item_seq
            order by cancellations.cancelled_at, cancellations.batch_seq, cancellations.line
        ) as cancellation_rank
    from started_items
    inner join cancellations
        on
            started_items.data_source = cancellations.data_source
            and started_items.subscription_external_id = cancellations.subscription_external_id
            and started_items.service_period_start <= cancellations.cancelled_at
            and (
                started_items.next_item_start is null
                or started_items.next_item_start > cancellations.cancelled_at
            )
),

churn_dates as (
    select
        started_items.*,
        item_cancellations.cancellation_at,
        item_cancellations.cancellation_file,
        item_cancellations.cancellation_line,
        item_cancellations.cancellation_batch_seq,
        {% if var('churn_recognition') == 'at_period_end' -%}
            -- at_period_end: churn at the end of the last service period started before the cancellation
            case
                when started_items.paid_through > item_cancellations.cancellation_at then started_items.paid_through
                else item_cancellations.cancellation_at
            end
        {%- else -%}
            item_cancellations.cancellation_at
        {%- endif %} as cancellation_churn_at,
        {% if var('churn_after_days') is not none -%}
            case
                when
                    coalesce(started_items.next_item_start, {{ as_of() }})
                    > {{ dbt.dateadd('day', var('churn_after_days'), 'started_items.paid_through') }}
                    then started_items.paid_through
            end
        {%- else -%}
            cast(null as {{ timestamp_type() }})
        {%- endif %} as missing_renewal_churn_at
    from started_items
    left join item_cancellations
        on
            started_items.data_source = item_cancellations.data_source
            and started_items.subscription_external_id = item_cancellations.subscription_external_id
            and started_items.item_seq = item_cancellations.item_seq
            and item_cancellations.cancellation_rank = 1
),

churns as (
    select
        *,
        case
            when
                cancellation_churn_at is not null
                and (missing_renewal_churn_at is null or cancellation_churn_at <= missing_renewal_churn_at)
                and (next_item_start is null or cancellation_churn_at < next_item_start)
                then cancellation_churn_at
            when missing_renewal_churn_at is not null then missing_renewal_churn_at
        end as churn_at
    from churn_dates
),

-- §3 table: a reset item sets MRR outright; a differential one adds to the previous MRR
resets as (
    select
        *,
        case
            when started_before = 0 then 1
            when lag(churn_at) over (
                partition by data_source, subscription_external_id order by item_seq
            ) is not null then 1
            when not prorated or proration_type = 'full' then 1
            else 0
        end as is_mrr_reset
    from churns
),

segments as (
    select
        *,
        sum(is_mrr_reset) over (
            partition by data_source, subscription_external_id
            order by item_seq rows between unbounded preceding and current row
        ) as mrr_segment,
        sum(case when is_mrr_reset = 1 or proration_type = 'differential_mrr' then 1 else 0 end) over (
            partition by data_source, subscription_external_id
            order by item_seq rows between unbounded preceding and current row
        ) as quantity_segment
    from resets
),

item_states as (
    select
        *,
        sum(mrr_item) over (
            partition by data_source, subscription_external_id, mrr_segment
            order by item_seq rows between unbounded preceding and current row
        ) as mrr_after_item,
        -- a sum of BIGINTs is HUGEINT in DuckDB; quantities stay BIGINT (pandas and BI drivers)
        cast(sum(quantity) over (
            partition by data_source, subscription_external_id, quantity_segment
            order by item_seq rows between unbounded preceding and current row
        ) as bigint) as quantity_after_item
    from segments
),

states as (
    select
        data_source,
        subscription_external_id,
        batch_seq as item_batch_seq,
        line as item_line,
        service_period_start as effective_at,
        'line_item' as state_kind,
        0 as kind_rank,
        item_seq,
        event_order,
        batch_seq,
        line,
        cast(null as {{ dbt.type_string() }}) as cancellation_file,
        mrr_after_item as mrr_billing_currency,
        quantity_after_item as quantity,
        true as is_live,
        service_period_end,
        paid_through
    from item_states
    union all
    select
        data_source,
        subscription_external_id,
        batch_seq as item_batch_seq,
        line as item_line,
        churn_at as effective_at,
        case
            when churn_at = missing_renewal_churn_at and churn_at <> coalesce(cancellation_churn_at, churn_at)
                then 'missing_renewal'
            when cancellation_at is null then 'missing_renewal'
            else 'cancellation'
        end as state_kind,
        1 as kind_rank,
        item_seq,
        cast(null as integer) as event_order,
        coalesce(cancellation_batch_seq, batch_seq) as batch_seq,
        coalesce(cancellation_line, line) as line,
        cancellation_file,
        {{ derived_money('0') }} as mrr_billing_currency,
        0 as quantity,
        false as is_live,
        service_period_end,
        paid_through
    from item_states
    where churn_at is not null
),

-- changes of one subscription at the same instant net out: the state after the last of them counts
-- (mrr-rules §3: intervals are stretches of constant MRR, never of zero length). The last state of a
-- moment is the one the next state does not share it with; the moments' ranks number the states kept.
-- Both windows share one sort (the rank's order is a prefix of the other's).
moments as (
    select
        *,
        lead(effective_at) over (
            partition by data_source, subscription_external_id
            order by effective_at, kind_rank, item_seq
        ) as next_state_at,
        dense_rank() over (
            partition by data_source, subscription_external_id
            order by effective_at
        ) as state_seq
    from states
    where effective_at <= {{ as_of() }}
),

sequenced as (
    select
        *,
        cast(1 as {{ dbt.type_bigint() }}) as moment_rank
    from moments
    where next_state_at is null or next_state_at <> effective_at
),

final as (
    select
        sequenced.data_source,
        items.customer_external_id,
        sequenced.subscription_external_id,
        items.subscription_set_external_id,
        items.billing_currency,
        items.plan_external_id,
        items.plan_name,
        items.interval_unit,
        items.interval_count,
        sequenced.effective_at,
        sequenced.state_kind,
        sequenced.kind_rank,
        sequenced.item_seq,
        sequenced.event_order,
        sequenced.batch_seq,
        sequenced.line,
        coalesce(sequenced.cancellation_file, items.file) as file,
        items.invoice_external_id,
        items.line_item_external_id,
        sequenced.mrr_billing_currency,
        sequenced.quantity,
        sequenced.is_live,
        sequenced.service_period_end,
        sequenced.paid_through,
        sequenced.moment_rank,
        sequenced.state_seq
    from sequenced
    inner join line_item_mrr as items
        on
            sequenced.data_source = items.data_source
            and sequenced.item_batch_seq = items.batch_seq
            and sequenced.item_line = items.line
)

select * from final
