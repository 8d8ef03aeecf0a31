-- One row per live customer: verification state and order history. No personal data
-- (email and full_name are classified pii in the contract and stay out of the marts).
with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

orders_per_customer as (

    select
        customer_id,
        count(*) as order_count,
        sum(case when order_status not in ('CANCELLED', 'REFUNDED') then 1 else 0 end) as completed_or_open_order_count,
        min(order_placed_at) as first_order_placed_at,
        max(order_placed_at) as last_order_placed_at
    from orders
    group by customer_id

),

joined as (

    select
        customers.customer_id,
        customers.customer_status,
        customers.country_code,
        customers.registered_at,
        customers.verified_at,
        customers.verified_at is not null as is_verified,
        coalesce(orders_per_customer.order_count, 0) as order_count,
        coalesce(orders_per_customer.completed_or_open_order_count, 0) as active_order_count,
        orders_per_customer.first_order_placed_at,
        orders_per_customer.last_order_placed_at
    from customers
    left join orders_per_customer on customers.customer_id = orders_per_customer.customer_id

),

final as (

    select
        cast(customer_id as bigint) as customer_id,
        cast(customer_status as varchar) as customer_status,
        cast(country_code as varchar) as country_code,
        registered_at,
        {{ utc_date('registered_at') }} as registered_date,
        verified_at,
        cast(is_verified as boolean) as is_verified,
        {{ hours_between('registered_at', 'verified_at') }} as hours_to_verify,
        cast(order_count as integer) as order_count,
        cast(active_order_count as integer) as active_order_count,
        first_order_placed_at,
        last_order_placed_at
    from joined

)

select * from final
