-- One row per live order line of a live order, with order and product context.
-- Lines whose order is not (or no longer) in stg_orders are left out, so order_id always
-- resolves to fct_orders.
with

order_lines as (

    select * from {{ ref('stg_order_lines') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

joined as (

    select
        order_lines.order_id,
        order_lines.line_number,
        order_lines.sku,
        orders.customer_id,
        orders.order_status,
        orders.currency,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.line_amount,
        order_lines.quantity * order_lines.unit_price - order_lines.line_amount as discount_amount,
        products.title,
        products.artist,
        products.product_format,
        orders.order_placed_at
    from order_lines
    inner join orders on order_lines.order_id = orders.order_id
    left join products on order_lines.sku = products.sku

),

final as (

    select
        cast(cast(order_id as varchar) || '-' || cast(line_number as varchar) as varchar) as order_line_key,
        cast(order_id as bigint) as order_id,
        cast(line_number as integer) as line_number,
        cast(sku as varchar) as sku,
        cast(customer_id as bigint) as customer_id,
        cast(order_status as varchar) as order_status,
        cast(currency as varchar) as currency,
        cast(quantity as integer) as quantity,
        cast(unit_price as numeric(12, 2)) as unit_price,
        cast(line_amount as numeric(12, 2)) as line_amount,
        cast(discount_amount as numeric(12, 2)) as discount_amount,
        cast(title as varchar) as title,
        cast(artist as varchar) as artist,
        cast(product_format as varchar) as product_format,
        order_placed_at,
        {{ utc_date('order_placed_at') }} as order_placed_date
    from joined

)

select * from final
