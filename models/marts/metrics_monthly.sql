-- datasets.md metrics per calendar month (the `month` column is the month's first day).
with metrics as (
    {{ saas_metrics('month') }}
),

-- ltv: arpa / mean monthly customer churn rate of the six months up to this one
churn_window as (
    select
        *,
        sum(customer_churn_rate) over (order by month rows between 5 preceding and current row) as churn_rate_sum,
        count(customer_churn_rate) over (order by month rows between 5 preceding and current row) as churn_rate_months
    from metrics
),

final as (
    select
        *,
        case
            when
                arpa is not null and churn_rate_sum > 0
                and {{ ltv_fits('arpa', 'churn_rate_months', 'churn_rate_sum') }}
                then {{ multiply_ratio(
                    'arpa', 'churn_rate_months * 1000000', cast_decimal('churn_rate_sum * 1000000', 38, 0)
                ) }}
        end as ltv
    from churn_window
)

select * from final
