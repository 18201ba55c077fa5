{#- Integers 0 .. 10^digits - 1 without recursion (portable to every warehouse). -#}
{% macro integers(digits=5) -%}
    select
        {% for position in range(digits) -%}
            d{{ position }}.n * {{ 10 ** position }}{% if not loop.last %} + {% endif %}
        {%- endfor %} as n
    from
        {% for position in range(digits) -%}
            (
                {% for n in range(10) -%}
                    select {{ n }} as n{% if not loop.last %} union all {% endif %}
                {%- endfor %}
            ) as d{{ position }}{% if not loop.last %} cross join {% endif %}
        {% endfor %}
{%- endmacro %}
