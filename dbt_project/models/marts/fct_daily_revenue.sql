-- One row per day (UTC) per currency with captured money.
--
-- Revenue definition: for day D and currency C,
--   net_revenue = sum(amount) of payments captured on D in C  -  sum(refunded_amount) of those payments.
-- A payment counts as captured when its status is CAPTURED, PARTIALLY_REFUNDED or REFUNDED and it has a
-- captured_at (AUTHORISED, FAILED, VOIDED never count). Refunds are attributed to the capture day of the
-- payment they refund: the contract carries no refund timestamp, so a past day's net revenue goes down
-- when a refund arrives later. Currencies are never converted or summed together.
with

payments as (

    select * from {{ ref('stg_payments') }}

),

captured as (

    select
        {{ utc_date('captured_at') }} as revenue_date,
        currency,
        order_id,
        payment_amount,
        refunded_amount
    from payments
    where {{ is_captured_payment() }}

),

daily as (

    select
        revenue_date,
        currency,
        count(*) as captured_payment_count,
        count(distinct order_id) as order_count,
        sum(case when refunded_amount > 0 then 1 else 0 end) as refunded_payment_count,
        sum(payment_amount) as gross_captured_amount,
        sum(refunded_amount) as refunded_amount
    from captured
    group by revenue_date, currency

),

final as (

    select
        cast(cast(revenue_date as varchar) || '-' || currency as varchar) as daily_revenue_key,
        cast(revenue_date as date) as revenue_date,
        cast(currency as varchar) as currency,
        cast(captured_payment_count as integer) as captured_payment_count,
        cast(order_count as integer) as order_count,
        cast(refunded_payment_count as integer) as refunded_payment_count,
        cast(gross_captured_amount as numeric(14, 2)) as gross_captured_amount,
        cast(refunded_amount as numeric(14, 2)) as refunded_amount,
        cast(gross_captured_amount - refunded_amount as numeric(14, 2)) as net_revenue
    from daily

)

select * from final
