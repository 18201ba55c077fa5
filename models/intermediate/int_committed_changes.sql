-- mrr-rules §7: scheduled events that are neither retracted nor covered by a line item yet are
-- committed changes. Amounts normalise like line items (plan ratio, tax excluded); each change is
-- valued at the latest rate known for its effective date and classified like an MRR movement (§5).
with subscription_events as (
    select * from {{ ref('stg_subscription_events') }}
),

line_items as (
    select * from {{ ref('stg_line_items') }}
),

plans as (
    select * from {{ ref('stg_plans') }}
),

invoices as (
    select * from {{ ref('stg_invoices') }}
),

subscription_changes as (
    select * from {{ ref('int_subscription_changes') }}
),

customer_changes as (
    select * from {{ ref('int_customer_changes') }}
),

customer_map as (
    select * from {{ ref('int_customer_map') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates') }}
),

scheduled as (
    select *
    from subscription_events
    where
        event_type in (
            'subscription_start_scheduled', 'subscription_update_scheduled', 'subscription_cancellation_scheduled'
        )
        and event_date <= {{ as_of() }}
),

retractions as (
    select
        data_source,
        subscription_external_id,
        event_type,
        event_date,
        retracted_event_id
    from subscription_events
    where event_type like '%retracted' and event_date <= {{ as_of() }}
),

committed as (
    select *
    from scheduled
    where
        not exists (
            select 1
            from retractions
            where
                retractions.data_source = scheduled.data_source
                and (
                    retractions.retracted_event_id = scheduled.external_id
                    or (
                        retractions.subscription_external_id = scheduled.subscription_external_id
                        and retractions.event_type = 'scheduled_' || replace(scheduled.event_type, '_scheduled', '')
                        || '_retracted'
                        and retractions.event_date >= scheduled.event_date
                    )
                )
        )
        -- a line item starting at or after the effective date turns the commitment into MRR
        and not exists (
            select 1
            from line_items
            where
                line_items.data_source = scheduled.data_source
                and line_items.subscription_external_id = scheduled.subscription_external_id
                and line_items.service_period_start >= scheduled.effective_date
        )
),

-- a scheduled start without a currency bills like the customer's latest invoice
customer_currencies as (
    select
        data_source,
        customer_external_id,
        currency,
        row_number() over (partition by data_source, customer_external_id order by date desc, batch_seq desc, line desc)
            as recency
    from invoices
),

current_states as (
    select
        *,
        row_number() over (
            partition by data_source, subscription_external_id order by state_seq desc
        ) as recency
    from subscription_changes
),

normalised as (
    select
        committed.data_source,
        committed.customer_external_id,
        committed.subscription_external_id,
        committed.external_id as event_external_id,
        committed.event_type,
        committed.event_date,
        committed.effective_date,
        committed.event_order,
        committed.batch_seq,
        committed.line,
        committed.file,
        coalesce(committed.plan_external_id, current_states.plan_external_id) as plan_external_id,
        current_states.plan_external_id as previous_plan_external_id,
        coalesce(
            committed.currency, current_states.billing_currency, customer_currencies.currency,
            {{ sql_string(var("account_currency")) }}
        ) as billing_currency,
        coalesce(committed.quantity, current_states.quantity, 0) as quantity,
        coalesce(current_states.mrr_billing_currency, 0) as current_mrr_billing_currency,
        coalesce(current_states.is_live, false) as currently_live,
        case
            when committed.event_type = 'subscription_cancellation_scheduled' then {{ derived_money('0') }}
            else {{ round_cents_div(
                to_cents('committed.amount - committed.tax_amount')
                ~ " * case when plans.interval_unit = 'day' then " ~ days_per_month_millionths()
                ~ " else 1000000 end",
                "case when plans.interval_unit = 'year' then 12 * plans.interval_count"
                ~ " else plans.interval_count end * 1000000"
            ) }}
        end as committed_mrr_billing_currency
    from committed
    left join current_states
        on
            committed.data_source = current_states.data_source
            and committed.subscription_external_id = current_states.subscription_external_id
            and current_states.recency = 1
    left join customer_currencies
        on
            committed.data_source = customer_currencies.data_source
            and committed.customer_external_id = customer_currencies.customer_external_id
            and customer_currencies.recency = 1
    left join plans
        on
            committed.data_source = plans.data_source
            and coalesce(committed.plan_external_id, current_states.plan_external_id) = plans.external_id
),

sequenced as (
    select
        *,
        coalesce(
            lag(committed_mrr_billing_currency) over (
                partition by data_source, subscription_external_id
                order by effective_date, event_order nulls last, batch_seq, line
            ),
            case when currently_live then current_mrr_billing_currency else 0 end
        ) as previous_committed_mrr_billing_currency,
        event_type <> 'subscription_cancellation_scheduled' as is_live,
        coalesce(
            lag(event_type <> 'subscription_cancellation_scheduled') over (
                partition by data_source, subscription_external_id
                order by effective_date, event_order nulls last, batch_seq, line
            ),
            currently_live
        ) as was_live
    from normalised
),

valued as (
    select
        sequenced.*,
        sequenced.committed_mrr_billing_currency - sequenced.previous_committed_mrr_billing_currency
            as movement_billing_currency,
        {{ in_account_currency(
            'sequenced.committed_mrr_billing_currency - sequenced.previous_committed_mrr_billing_currency',
            'sequenced.billing_currency', 'fx_rates'
        ) }} as cmrr_movement
    from sequenced
    {{ join_rate_on('fx_rates', 'sequenced.billing_currency', 'sequenced.effective_date') }}
),

customer_now as (
    select
        customer_id,
        customer_mrr_after as mrr,
        live_subscriptions_after,
        is_subscriber_after,
        greatest(is_subscriber_after, was_ever_subscriber) as was_ever_subscriber,
        row_number() over (partition by customer_id order by customer_seq desc) as recency
    from customer_changes
),

customer_sequence as (
    select
        customer_map.customer_id,
        valued.*,
        case
            when valued.is_live and not valued.was_live then 1
            when not valued.is_live and valued.was_live then -1
            else 0
        end as live_subscription_delta,
        row_number() over (
            partition by customer_map.customer_id
            order by valued.effective_date, valued.event_order nulls last, valued.batch_seq, valued.line
        ) as customer_seq
    from valued
    inner join customer_map
        on
            valued.data_source = customer_map.data_source
            and valued.customer_external_id = customer_map.customer_external_id
    where valued.movement_billing_currency <> 0 or valued.is_live <> valued.was_live
),

running as (
    select
        customer_sequence.*,
        coalesce(customer_now.mrr, 0) + sum(customer_sequence.cmrr_movement) over (
            partition by customer_sequence.customer_id
            order by customer_sequence.customer_seq rows between unbounded preceding and current row
        ) as cmrr,
        coalesce(customer_now.live_subscriptions_after, 0) + sum(customer_sequence.live_subscription_delta) over (
            partition by customer_sequence.customer_id
            order by customer_sequence.customer_seq rows between unbounded preceding and current row
        ) as live_subscriptions_after,
        coalesce(customer_now.is_subscriber_after, 0) as subscriber_now,
        coalesce(customer_now.was_ever_subscriber, 0) as ever_subscriber_now
    from customer_sequence
    left join customer_now
        on customer_sequence.customer_id = customer_now.customer_id and customer_now.recency = 1
),

states as (
    select
        *,
        case when live_subscriptions_after > 0 then 1 else 0 end as is_subscriber_after
    from running
),

final as (
    select
        *,
        coalesce(
            lag(is_subscriber_after) over (partition by customer_id order by customer_seq), subscriber_now
        ) as is_subscriber_before,
        greatest(
            ever_subscriber_now,
            coalesce(max(is_subscriber_after) over (
                partition by customer_id order by customer_seq rows between unbounded preceding and 1 preceding
            ), 0)
        ) as was_ever_subscriber
    from states
)

select * from final
