{#-
  True when a payment's money was taken: status CAPTURED, PARTIALLY_REFUNDED or REFUNDED, with a
  capture time. AUTHORISED (not yet taken), FAILED and VOIDED payments never count as revenue.
  The one definition used by fct_payments, fct_orders and fct_daily_revenue.
-#}
{% macro is_captured_payment(status_column='payment_status', captured_at_column='captured_at') -%}
    ({{ status_column }} in ('CAPTURED', 'PARTIALLY_REFUNDED', 'REFUNDED') and {{ captured_at_column }} is not null)
{%- endmacro %}
