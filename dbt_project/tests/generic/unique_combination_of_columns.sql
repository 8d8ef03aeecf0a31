{#- Fails with the duplicated key values when the combination of `combination_of_columns` is not unique. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

keyed as (
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as duplicates
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
),

final as (
    select * from keyed where duplicates > 1
)

select * from final

{% endtest %}
