-- One row per live order, from the latest orders contract (orders_v2).
-- Soft-deleted rows (_deleted_at set) are filtered out.
with

source as (

    select * from {{ source('reporting', 'orders') }}

),

renamed as (

    select
        ---------- ids
        cast(order_id as bigint) as order_id,
        cast(customer_id as bigint) as customer_id,

        ---------- attributes
        cast(order_status as varchar) as order_status,
        cast(sales_channel as varchar) as sales_channel,
        cast(upper(currency) as varchar) as currency,

        ---------- amounts (major units, e.g. 19.99)
        cast(total_amount as numeric(12, 2)) as total_amount,

        ---------- timestamps
        order_placed_at,
        updated_at as order_updated_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        order_id,
        customer_id,
        order_status,
        sales_channel,
        currency,
        total_amount,
        order_placed_at,
        order_updated_at,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
