-- One row per ACTIVE catalog SKU that is out of stock everywhere (nothing available over all
-- locations, or no stock row at all), with the open demand waiting for it: quantity on lines of
-- orders that are placed, paid or packed (not yet shipped, cancelled or refunded).
with

products as (

    select * from {{ ref('dim_products') }}

),

order_lines as (

    select * from {{ ref('fct_order_lines') }}

),

open_demand as (

    select
        sku,
        count(distinct order_id) as open_order_count,
        sum(quantity) as open_order_quantity
    from order_lines
    where order_status in ('PLACED', 'PAID', 'PACKED')
    group by sku

),

stock_outs as (

    select
        products.sku,
        products.title,
        products.artist,
        products.product_format,
        products.location_count,
        products.on_hand_quantity,
        products.reserved_quantity,
        products.available_quantity,
        coalesce(open_demand.open_order_count, 0) as open_order_count,
        coalesce(open_demand.open_order_quantity, 0) as open_order_quantity,
        products.stock_updated_at
    from products
    left join open_demand on products.sku = open_demand.sku
    where products.is_active and products.is_out_of_stock

),

final as (

    select
        cast(sku as varchar) as sku,
        cast(title as varchar) as title,
        cast(artist as varchar) as artist,
        cast(product_format as varchar) as product_format,
        cast(location_count as integer) as location_count,
        cast(on_hand_quantity as integer) as on_hand_quantity,
        cast(reserved_quantity as integer) as reserved_quantity,
        cast(available_quantity as integer) as available_quantity,
        cast(open_order_count as integer) as open_order_count,
        cast(open_order_quantity as integer) as open_order_quantity,
        stock_updated_at
    from stock_outs

)

select * from final
