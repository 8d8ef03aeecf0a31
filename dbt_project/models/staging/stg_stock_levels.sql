-- One row per SKU per warehouse location. stock_levels has HARD delete semantics (no _deleted_at):
-- a deleted stock row is gone from the contract table, so nothing needs filtering here.
with

source as (

    select * from {{ source('reporting', 'stock_levels') }}

),

renamed as (

    select
        ---------- ids
        cast(sku as varchar) as sku,
        cast(location as varchar) as stock_location,

        ---------- quantities
        cast(on_hand as integer) as on_hand_quantity,
        cast(reserved as integer) as reserved_quantity,

        ---------- timestamps
        updated_at as stock_updated_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at

    from source

),

final as (

    select
        sku,
        stock_location,
        on_hand_quantity,
        reserved_quantity,
        stock_updated_at,
        source_position,
        ingested_at

    from renamed

)

select * from final
