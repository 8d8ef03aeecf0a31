-- One row per live payment. captured_amount is the money taken (0 unless captured, see
-- is_captured_payment), net_amount = captured_amount - refunded_amount. customer_id comes from
-- the order and is null while the order has not arrived (payments and orders are separate streams).
with

payments as (

    select * from {{ ref('stg_payments') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

joined as (

    select
        payments.payment_id,
        payments.order_id,
        orders.customer_id,
        payments.payment_status,
        payments.currency,
        payments.payment_amount,
        {{ is_captured_payment('payments.payment_status', 'payments.captured_at') }} as is_captured,
        payments.refunded_amount,
        payments.authorised_at,
        payments.captured_at,
        payments.payment_updated_at
    from payments
    left join orders on payments.order_id = orders.order_id

),

final as (

    select
        cast(payment_id as bigint) as payment_id,
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,
        cast(payment_status as varchar) as payment_status,
        cast(currency as varchar) as currency,
        cast(payment_amount as numeric(12, 2)) as payment_amount,
        cast(is_captured as boolean) as is_captured,
        cast(case when is_captured then payment_amount else 0 end as numeric(12, 2)) as captured_amount,
        cast(case when is_captured then refunded_amount else 0 end as numeric(12, 2)) as refunded_amount,
        cast(case when is_captured then payment_amount - refunded_amount else 0 end as numeric(12, 2)) as net_amount,
        authorised_at,
        captured_at,
        {{ utc_date('captured_at') }} as captured_date,
        payment_updated_at
    from joined

)

select * from final
