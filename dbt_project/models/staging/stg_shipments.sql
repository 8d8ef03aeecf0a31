-- One row per live shipment. Soft-deleted rows (_deleted_at set) are filtered out.
with

source as (

    select * from {{ source('reporting', 'shipments') }}

),

renamed as (

    select
        ---------- ids
        cast(shipment_id as bigint) as shipment_id,
        cast(order_id as bigint) as order_id,

        ---------- attributes
        cast(status as varchar) as shipment_status,
        cast(carrier as varchar) as carrier,
        cast(tracking_number as varchar) as tracking_number,

        ---------- timestamps
        picked_at,
        packed_at,
        shipped_at,
        updated_at as shipment_updated_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        shipment_id,
        order_id,
        shipment_status,
        carrier,
        tracking_number,
        picked_at,
        packed_at,
        shipped_at,
        shipment_updated_at,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
