-- One row per live payment. Soft-deleted rows (_deleted_at set) are filtered out.
with

source as (

    select * from {{ source('reporting', 'payments') }}

),

renamed as (

    select
        ---------- ids
        cast(payment_id as bigint) as payment_id,
        cast(order_id as bigint) as order_id,

        ---------- attributes
        cast(status as varchar) as payment_status,
        cast(upper(currency) as varchar) as currency,

        ---------- amounts (major units)
        cast(amount as numeric(12, 2)) as payment_amount,
        cast(refunded_amount as numeric(12, 2)) as refunded_amount,

        ---------- timestamps
        authorised_at,
        captured_at,
        updated_at as payment_updated_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        payment_id,
        order_id,
        payment_status,
        currency,
        payment_amount,
        refunded_amount,
        authorised_at,
        captured_at,
        payment_updated_at,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
