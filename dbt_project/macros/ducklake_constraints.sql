{#-
  The column list of a table with an enforced contract. DuckLake (the `ducklake` target) has no PRIMARY KEY,
  UNIQUE or FOREIGN KEY constraints ("not supported in DuckLake"), so on a DuckLake relation those are left
  out of the DDL and only NOT NULL and CHECK stay; the keys are still checked by the models' data tests
  (unique, not_null, relationships). Every other relation gets dbt's own rendering, unchanged.
-#}
{% macro duckdb__get_table_columns_and_constraints() -%}
    {%- if adapter.is_ducklake(this) -%}
        {{ return(ducklake_table_columns_and_constraints()) }}
    {%- else -%}
        {{ return(table_columns_and_constraints()) }}
    {%- endif -%}
{%- endmacro %}

{% macro ducklake_table_columns_and_constraints() %}
    {%- set keys = ['primary_key', 'unique', 'foreign_key'] -%}
    {%- set columns = {} -%}
    {%- for name, column in model['columns'].items() -%}
        {%- set kept = [] -%}
        {%- for constraint in column.get('constraints', []) if constraint['type'] not in keys -%}
            {%- do kept.append(constraint) -%}
        {%- endfor -%}
        {%- set copy = column.copy() -%}
        {%- do copy.update({'constraints': kept}) -%}
        {%- do columns.update({name: copy}) -%}
    {%- endfor -%}
    {%- set model_constraints = [] -%}
    {%- for constraint in model.get('constraints', []) if constraint['type'] not in keys -%}
        {%- do model_constraints.append(constraint) -%}
    {%- endfor -%}
    {%- set raw_column_constraints = adapter.render_raw_columns_constraints(raw_columns=columns) -%}
    {%- set raw_model_constraints = adapter.render_raw_model_constraints(raw_constraints=model_constraints) -%}
    (
    {% for c in raw_column_constraints -%}
      {{ c }}{{ "," if not loop.last or raw_model_constraints }}
    {% endfor %}
    {% for c in raw_model_constraints -%}
        {{ c }}{{ "," if not loop.last }}
    {% endfor -%}
    )
{% endmacro %}
