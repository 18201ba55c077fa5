-- datasets.md metrics per day; ltv uses the monthly churn rates of the six months up to the day's month.
with metrics as (
    {{ saas_metrics('day') }}
),

monthly as (
    select * from {{ ref('metrics_monthly') }}
),

final as (
    select
        metrics.*,
        case
            when
                metrics.arpa is not null and monthly.churn_rate_sum > 0
                and {{ ltv_fits('metrics.arpa', 'monthly.churn_rate_months', 'monthly.churn_rate_sum') }}
                then {{ multiply_ratio(
                    'metrics.arpa',
                    'monthly.churn_rate_months * 1000000',
                    cast_decimal('monthly.churn_rate_sum * 1000000', 38, 0)
                ) }}
        end as ltv
    from metrics
    left join monthly
        on cast({{ dbt.date_trunc('month', 'metrics.day') }} as date) = monthly.month
)

select * from final
