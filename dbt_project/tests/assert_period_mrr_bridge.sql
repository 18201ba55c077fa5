-- datasets.md: mrr(end) = mrr(start) + net_mrr_movement + fx_impact, for every month and day.
-- an asset check of metrics_monthly in Dagster (a test of several models names the one it checks)
{{ config(meta={'dagster': {'ref': {'name': 'metrics_monthly'}}}) }}

with monthly as (
    select * from {{ ref('metrics_monthly') }}
),

daily as (
    select * from {{ ref('metrics_daily') }}
),

previous_month as (
    select
        month as period,
        mrr,
        net_mrr_movement,
        fx_impact,
        coalesce(lag(mrr) over (order by month), 0) as previous_mrr
    from monthly
),

previous_day as (
    select
        day as period,
        mrr,
        net_mrr_movement,
        fx_impact,
        coalesce(lag(mrr) over (order by day), 0) as previous_mrr
    from daily
)

select * from previous_month
where mrr <> previous_mrr + net_mrr_movement + fx_impact
union all
select * from previous_day
where mrr <> previous_mrr + net_mrr_movement + fx_impact
