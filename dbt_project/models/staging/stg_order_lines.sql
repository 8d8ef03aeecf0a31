-- One row per live order line. Soft-deleted rows (_deleted_at set) are filtered out.
with

source as (

    select * from {{ source('reporting', 'order_lines') }}

),

renamed as (

    select
        ---------- ids
        cast(order_id as bigint) as order_id,
        cast(line_number as integer) as line_number,
        cast(sku as varchar) as sku,

        ---------- quantities and amounts
        cast(quantity as integer) as quantity,
        cast(unit_price as numeric(12, 2)) as unit_price,
        cast(line_amount as numeric(12, 2)) as line_amount,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        order_id,
        line_number,
        sku,
        quantity,
        unit_price,
        line_amount,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
