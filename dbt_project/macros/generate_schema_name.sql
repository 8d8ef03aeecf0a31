{#-
  Custom schemas are used verbatim (`staging`, `marts`) instead of dbt's default
  `<target_schema>_<custom>`, so BI tools see the same schema names on DuckDB and PostgreSQL.
  Models without a custom schema fall back to the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
