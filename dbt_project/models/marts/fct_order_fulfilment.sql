-- One row per live order: when it reached each fulfilment stage and how long each step took.
--
-- Stages (each evidenced by a timestamp from the service that owns the step):
--   PLACED   orders.order_placed_at
--   PAID     first capture of a payment of the order (payments.captured_at, captured statuses only)
--   PACKED   first packed_at of a non-cancelled shipment of the order
--   SHIPPED  first shipped_at of a non-cancelled shipment of the order
-- fulfilment_stage is the furthest stage with evidence. A later stage implies the earlier ones
-- for the funnel counts even when an earlier timestamp is missing (e.g. shipped without a packed scan);
-- lead times are null when either end is missing. Cancelled and refunded orders keep the stage they
-- reached (is_cancelled tells them apart).
with

orders as (

    select * from {{ ref('stg_orders') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

shipments as (

    select * from {{ ref('stg_shipments') }}

),

paid as (

    select
        order_id,
        min(captured_at) as paid_at
    from payments
    where {{ is_captured_payment() }}
    group by order_id

),

shipped as (

    select
        order_id,
        min(packed_at) as packed_at,
        min(shipped_at) as shipped_at
    from shipments
    where shipment_status <> 'CANCELLED'
    group by order_id

),

joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.order_status,
        orders.currency,
        orders.total_amount,
        orders.order_placed_at as placed_at,
        paid.paid_at,
        shipped.packed_at,
        shipped.shipped_at
    from orders
    left join paid on orders.order_id = paid.order_id
    left join shipped on orders.order_id = shipped.order_id

),

staged as (

    select
        *,
        case
            when shipped_at is not null then 4
            when packed_at is not null then 3
            when paid_at is not null then 2
            else 1
        end as fulfilment_stage_rank
    from joined

),

final as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(order_status as varchar) as order_status,
        cast(currency as varchar) as currency,
        cast(total_amount as numeric(12, 2)) as total_amount,
        cast(
            case fulfilment_stage_rank
                when 4 then 'SHIPPED'
                when 3 then 'PACKED'
                when 2 then 'PAID'
                else 'PLACED'
            end as varchar
        ) as fulfilment_stage,
        cast(fulfilment_stage_rank as integer) as fulfilment_stage_rank,
        cast(order_status in ('CANCELLED', 'REFUNDED') as boolean) as is_cancelled,
        placed_at,
        paid_at,
        packed_at,
        shipped_at,
        {{ hours_between('placed_at', 'paid_at') }} as hours_placed_to_paid,
        {{ hours_between('paid_at', 'packed_at') }} as hours_paid_to_packed,
        {{ hours_between('packed_at', 'shipped_at') }} as hours_packed_to_shipped,
        {{ hours_between('placed_at', 'shipped_at') }} as hours_placed_to_shipped
    from staged

)

select * from final
