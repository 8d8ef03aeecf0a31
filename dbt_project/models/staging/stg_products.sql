-- One row per live catalog SKU. Soft-deleted rows (_deleted_at set) are filtered out.
with

source as (

    select * from {{ source('reporting', 'products') }}

),

renamed as (

    select
        ---------- ids
        cast(sku as varchar) as sku,

        ---------- attributes
        cast(title as varchar) as title,
        cast(artist as varchar) as artist,
        cast(format as varchar) as product_format,
        cast(is_active as boolean) as is_active,

        ---------- amounts
        cast(price as numeric(10, 2)) as list_price,
        cast(upper(currency) as varchar) as currency,

        ---------- timestamps
        updated_at as product_updated_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        sku,
        title,
        artist,
        product_format,
        is_active,
        list_price,
        currency,
        product_updated_at,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
