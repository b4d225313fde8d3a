"""Build configuration beyond pyproject.toml: the optional C extensions.

- ``elax_plan._f32json`` formats float32 vectors as JSON text (elax_plan/apply/vector_text.py);
- ``elax_plan._json_numbers`` checks a vector's JSON text without parsing its numbers (the
  NDJSON fast path in elax_plan/apply/rows.py).

Both are optional: without a C compiler the install still succeeds, orjson does the
formatting and simdjson the checking, with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"elax_plan.{name}",
            [f"elax_plan/{name}.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
        for name in ("_f32json", "_json_numbers")
    ]
)
