{#- The calendar day (UTC) of a timestamptz, the same on DuckDB and PostgreSQL whatever the session time zone. -#}
{% macro utc_date(column) -%}
    cast(({{ column }} at time zone 'UTC') as date)
{%- endmacro %}
