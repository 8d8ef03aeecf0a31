-- One row per live catalog SKU with its stock summed over all warehouse locations.
-- available = on_hand - reserved; a SKU is out of stock when nothing is available
-- (including SKUs with no stock row at all).
with

products as (

    select * from {{ ref('stg_products') }}

),

stock_levels as (

    select * from {{ ref('stg_stock_levels') }}

),

stock_per_sku as (

    select
        sku,
        count(*) as location_count,
        sum(on_hand_quantity) as on_hand_quantity,
        sum(reserved_quantity) as reserved_quantity,
        max(stock_updated_at) as stock_updated_at
    from stock_levels
    group by sku

),

joined as (

    select
        products.sku,
        products.title,
        products.artist,
        products.product_format,
        products.list_price,
        products.currency,
        products.is_active,
        coalesce(stock_per_sku.location_count, 0) as location_count,
        coalesce(stock_per_sku.on_hand_quantity, 0) as on_hand_quantity,
        coalesce(stock_per_sku.reserved_quantity, 0) as reserved_quantity,
        stock_per_sku.stock_updated_at,
        products.product_updated_at
    from products
    left join stock_per_sku on products.sku = stock_per_sku.sku

),

final as (

    select
        cast(sku as varchar) as sku,
        cast(title as varchar) as title,
        cast(artist as varchar) as artist,
        cast(product_format as varchar) as product_format,
        cast(list_price as numeric(10, 2)) as list_price,
        cast(currency as varchar) as currency,
        cast(is_active as boolean) as is_active,
        cast(location_count as integer) as location_count,
        cast(on_hand_quantity as integer) as on_hand_quantity,
        cast(reserved_quantity as integer) as reserved_quantity,
        cast(on_hand_quantity - reserved_quantity as integer) as available_quantity,
        cast(on_hand_quantity - reserved_quantity <= 0 as boolean) as is_out_of_stock,
        stock_updated_at,
        product_updated_at
    from joined

)

select * from final
