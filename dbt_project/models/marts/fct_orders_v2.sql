{{ config(post_hook="{{ create_latest_version_view() }}") }}

-- fct_orders v2 (latest): one row per live order, with its lines and payments rolled up.
-- Amounts are in the order currency; captured/refunded come from the payments of the order.
with

orders as (

    select * from {{ ref('stg_orders') }}

),

order_lines as (

    select * from {{ ref('stg_order_lines') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

lines_per_order as (

    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_quantity,
        sum(line_amount) as lines_amount
    from order_lines
    group by order_id

),

payments_per_order as (

    select
        order_id,
        sum(case when {{ is_captured_payment() }} then payment_amount else 0 end) as captured_amount,
        sum(case when {{ is_captured_payment() }} then refunded_amount else 0 end) as refunded_amount
    from payments
    group by order_id

),

joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.order_status,
        orders.sales_channel,
        orders.currency,
        orders.total_amount,
        coalesce(lines_per_order.line_count, 0) as line_count,
        coalesce(lines_per_order.item_quantity, 0) as item_quantity,
        coalesce(lines_per_order.lines_amount, 0) as lines_amount,
        coalesce(payments_per_order.captured_amount, 0) as captured_amount,
        coalesce(payments_per_order.refunded_amount, 0) as refunded_amount,
        orders.order_status = 'CANCELLED' as is_cancelled,
        orders.order_status = 'REFUNDED' as is_refunded,
        orders.order_placed_at,
        orders.order_updated_at
    from orders
    left join lines_per_order on orders.order_id = lines_per_order.order_id
    left join payments_per_order on orders.order_id = payments_per_order.order_id

),

final as (

    select
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(order_status as varchar) as order_status,
        cast(sales_channel as varchar) as sales_channel,
        cast(currency as varchar) as currency,
        cast(total_amount as numeric(12, 2)) as total_amount,
        cast(line_count as integer) as line_count,
        cast(item_quantity as integer) as item_quantity,
        cast(lines_amount as numeric(12, 2)) as lines_amount,
        cast(captured_amount as numeric(12, 2)) as captured_amount,
        cast(refunded_amount as numeric(12, 2)) as refunded_amount,
        cast(is_cancelled as boolean) as is_cancelled,
        cast(is_refunded as boolean) as is_refunded,
        order_placed_at,
        {{ utc_date('order_placed_at') }} as order_placed_date,
        order_updated_at
    from joined

)

select * from final
