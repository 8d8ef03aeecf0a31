-- One row per live customer. Soft-deleted rows (_deleted_at set: deleted in the customers service)
-- are filtered out here, so every downstream model only sees rows that exist in the source.
with

source as (

    select * from {{ source('reporting', 'customers') }}

),

renamed as (

    select
        ---------- ids
        cast(customer_id as bigint) as customer_id,

        ---------- personal data (classification pii: never selected into marts)
        cast(email as varchar) as email,
        cast(full_name as varchar) as full_name,

        ---------- attributes
        cast(upper(country_code) as varchar) as country_code,
        cast(status as varchar) as customer_status,

        ---------- timestamps
        registered_at,
        verified_at,

        ---------- provenance
        _source_position as source_position,
        _ingested_at as ingested_at,
        _deleted_at as deleted_at

    from source

),

final as (

    select
        customer_id,
        email,
        full_name,
        country_code,
        customer_status,
        registered_at,
        verified_at,
        source_position,
        ingested_at

    from renamed
    where deleted_at is null

)

select * from final
