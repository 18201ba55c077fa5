-- mrr-rules §5: each change of a subscription's MRR is a movement, classified by the customer's
-- subscriber state before and after it, then smart-classified within the settings' window.
{{ incremental_config('int_touched_customers', ['customer_id']) }}

with customer_changes as (
    {{ touched_rows('int_customer_changes', 'int_touched_customers', ['customer_id']) }}
),

movements as (
    select
        *,
        case
            when is_subscriber_before = 0 and is_subscriber_after = 1 and was_ever_subscriber = 0 then 'new_biz'
            when is_subscriber_before = 0 and is_subscriber_after = 1 then 'reactivation'
            when is_subscriber_before = 1 and is_subscriber_after = 0 then 'churn'
            when mrr_movement_billing_currency > 0 then 'expansion'
            else 'contraction'
        end as base_type
    from customer_changes
    where mrr_movement_billing_currency <> 0
),

smart_windows as (
    select
        *,
        max(case when base_type = 'new_biz' then effective_at end) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as last_new_biz_at,
        max(case when base_type = 'reactivation' then effective_at end) over (
            partition by customer_id order by customer_seq rows between unbounded preceding and current row
        ) as last_reactivation_at,
        min(case when base_type = 'churn' then effective_at end) over (
            partition by customer_id order by customer_seq rows between current row and unbounded following
        ) as next_churn_at
    from movements
),

final as (
    select
        *,
        {%- set window = var('smart_classification_minutes') | int %}
        {%- if window > 0 %}
            case
                when
                    base_type in ('expansion', 'contraction')
                    and last_reactivation_at is not null
                    and (last_new_biz_at is null or last_reactivation_at >= last_new_biz_at)
                    and effective_at <= {{ dbt.dateadd('minute', window, 'last_reactivation_at') }}
                    then 'reactivation'
                when
                    base_type in ('expansion', 'contraction')
                    and last_new_biz_at is not null
                    and effective_at <= {{ dbt.dateadd('minute', window, 'last_new_biz_at') }}
                    then 'new_biz'
                when
                    base_type in ('expansion', 'contraction')
                    and next_churn_at is not null
                    and next_churn_at <= {{ dbt.dateadd('minute', window, 'effective_at') }}
                    then 'churn'
                else base_type
            end as movement_type
        {%- else %}
            base_type as movement_type
        {%- endif %}
    from smart_windows
)

select * from final
