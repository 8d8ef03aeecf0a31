-- One row per SKU per warehouse location: on hand, reserved, available (on_hand - reserved) and
-- whether the location is out of stock for the SKU (nothing available).
with

stock_levels as (

    select * from {{ ref('stg_stock_levels') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

joined as (

    select
        stock_levels.sku,
        stock_levels.stock_location,
        stock_levels.on_hand_quantity,
        stock_levels.reserved_quantity,
        stock_levels.on_hand_quantity - stock_levels.reserved_quantity as available_quantity,
        products.title,
        products.artist,
        products.product_format,
        products.is_active,
        stock_levels.stock_updated_at
    from stock_levels
    left join products on stock_levels.sku = products.sku

),

final as (

    select
        cast(sku || '@' || stock_location as varchar) as stock_level_key,
        cast(sku as varchar) as sku,
        cast(stock_location as varchar) as stock_location,
        cast(on_hand_quantity as integer) as on_hand_quantity,
        cast(reserved_quantity as integer) as reserved_quantity,
        cast(available_quantity as integer) as available_quantity,
        cast(available_quantity <= 0 as boolean) as is_stock_out,
        cast(title as varchar) as title,
        cast(artist as varchar) as artist,
        cast(product_format as varchar) as product_format,
        cast(is_active as boolean) as is_active,
        stock_updated_at
    from joined

)

select * from final
