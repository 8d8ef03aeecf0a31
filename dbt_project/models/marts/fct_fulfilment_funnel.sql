-- One row per fulfilment stage (PLACED → PAID → PACKED → SHIPPED) over all live orders:
-- how many orders reached the stage, conversion from placed and from the previous stage, and the
-- lead time from the previous stage (average and median hours, over orders with both timestamps).
with

fulfilment as (

    select * from {{ ref('fct_order_fulfilment') }}

),

stages as (

    select 1 as stage_rank, 'PLACED' as funnel_stage
    union all select 2, 'PAID'
    union all select 3, 'PACKED'
    union all select 4, 'SHIPPED'

),

lead_times as (

    select 2 as stage_rank, hours_placed_to_paid as hours_from_previous from fulfilment
    union all select 3, hours_paid_to_packed from fulfilment
    union all select 4, hours_packed_to_shipped from fulfilment

),

reached as (

    select
        stages.stage_rank,
        stages.funnel_stage,
        count(fulfilment.order_id) as orders_reached
    from stages
    left join fulfilment on fulfilment.fulfilment_stage_rank >= stages.stage_rank
    group by stages.stage_rank, stages.funnel_stage

),

lead_time_stats as (

    select
        stage_rank,
        avg(hours_from_previous) as avg_hours_from_previous,
        percentile_cont(0.5) within group (order by hours_from_previous) as median_hours_from_previous
    from lead_times
    where hours_from_previous is not null
    group by stage_rank

),

placed as (

    select orders_reached as orders_placed from reached where stage_rank = 1

),

previous as (

    select stage_rank + 1 as stage_rank, orders_reached as orders_at_previous from reached

),

final as (

    select
        cast(reached.funnel_stage as varchar) as funnel_stage,
        cast(reached.stage_rank as integer) as stage_rank,
        cast(reached.orders_reached as integer) as orders_reached,
        cast(
            case when placed.orders_placed > 0
                then 1.0 * reached.orders_reached / placed.orders_placed end
            as numeric(7, 4)
        ) as conversion_from_placed,
        cast(
            case when previous.orders_at_previous > 0
                then 1.0 * reached.orders_reached / previous.orders_at_previous end
            as numeric(7, 4)
        ) as conversion_from_previous,
        cast(lead_time_stats.avg_hours_from_previous as numeric(12, 2)) as avg_hours_from_previous,
        cast(lead_time_stats.median_hours_from_previous as numeric(12, 2)) as median_hours_from_previous
    from reached
    cross join placed
    left join previous on reached.stage_rank = previous.stage_rank
    left join lead_time_stats on reached.stage_rank = lead_time_stats.stage_rank

)

select * from final
