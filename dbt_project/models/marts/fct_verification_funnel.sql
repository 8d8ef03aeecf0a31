-- Customer verification funnel (PENDING → VERIFIED), one row per registration day (UTC):
-- customers registered that day, how many have verified their email since (verified_at set, even if
-- they were erased later), how many are still pending, how many were erased, the verification rate
-- and the time to verify (hours from registration to verification).
with

customers as (

    select * from {{ ref('stg_customers') }}

),

cohorts as (

    select
        {{ utc_date('registered_at') }} as registration_date,
        count(*) as registered_count,
        sum(case when verified_at is not null then 1 else 0 end) as verified_count,
        sum(case when customer_status = 'PENDING' then 1 else 0 end) as pending_count,
        sum(case when customer_status = 'ERASED' then 1 else 0 end) as erased_count,
        avg({{ hours_between('registered_at', 'verified_at') }}) as avg_hours_to_verify,
        max({{ hours_between('registered_at', 'verified_at') }}) as max_hours_to_verify
    from customers
    group by {{ utc_date('registered_at') }}

),

final as (

    select
        cast(registration_date as date) as registration_date,
        cast(registered_count as integer) as registered_count,
        cast(verified_count as integer) as verified_count,
        cast(pending_count as integer) as pending_count,
        cast(erased_count as integer) as erased_count,
        cast(1.0 * verified_count / registered_count as numeric(7, 4)) as verification_rate,
        cast(avg_hours_to_verify as numeric(12, 2)) as avg_hours_to_verify,
        cast(max_hours_to_verify as numeric(12, 2)) as max_hours_to_verify
    from cohorts

)

select * from final
