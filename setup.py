"""Build configuration beyond pyproject.toml: the optional C extension elax_plan._f32json.

The extension formats float32 vectors as JSON text (elax_plan/apply/vector_text.py). It is
optional: without a C compiler the install still succeeds, and orjson does the formatting.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "elax_plan._f32json",
            ["elax_plan/_f32json.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
