{#-
  Post-hook for versioned models: when the model being built is the latest version, (re)create an
  unversioned view `<schema>.<model name>` over it, so BI can query `marts.fct_orders` and always get
  the latest version while pinned consumers keep reading `marts.fct_orders_v1`.
-#}
{% macro create_latest_version_view() %}
    {%- if model.get('version') is not none and model.get('version') == model.get('latest_version') -%}
        {%- set pointer = this.incorporate(path={"identifier": model['name']}, type='view') -%}
        drop view if exists {{ pointer }};
        create view {{ pointer }} as select * from {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}
