-- fct_orders v1 (deprecated, same deprecation date as the orders v1 contract): the original
-- interface, derived from v2 so both versions always agree. Like the orders v1 contract it maps
-- REFUNDED to CANCELLED and names the columns `status` and `placed_at`; no sales_channel.
with

orders as (

    select * from {{ ref('fct_orders', v=2) }}

),

final as (

    select
        order_id,
        customer_id,
        cast(case when order_status = 'REFUNDED' then 'CANCELLED' else order_status end as varchar) as status,
        currency,
        total_amount,
        line_count,
        item_quantity,
        lines_amount,
        cast(order_status in ('CANCELLED', 'REFUNDED') as boolean) as is_cancelled,
        order_placed_at as placed_at,
        order_updated_at as updated_at
    from orders

)

select * from final
