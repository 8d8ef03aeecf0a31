{#-
  Elapsed hours from `start_column` to `end_column` (two timestamptz), as numeric(12,2); null when
  either is null. Elapsed time, not boundary counting (dbt's datediff counts boundaries on DuckDB).
-#}
{% macro hours_between(start_column, end_column) -%}
    cast((extract(epoch from {{ end_column }}) - extract(epoch from {{ start_column }})) / 3600.0 as numeric(12, 2))
{%- endmacro %}
