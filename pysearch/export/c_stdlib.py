"""Identifiers that the C headers an exported kernel includes declare or reserve.

The C export includes ``<math.h>``, ``<stddef.h>``, ``<stdint.h>`` and ``<string.h>``; a kernel
named like anything those headers declare (``fmaf``, ``memcpy``, ``size_t``, ``NAN``, ...) does
not compile, or silently replaces a library function. The names are those of ISO C11 (with the
``f``/``l`` variants of every ``<math.h>`` function), the names C11's "future library
directions" reserve for these headers (``str``/``mem``/``wcs`` + lowercase letter, ``int*_t``
and ``uint*_t`` typedefs, ``INT*``/``UINT*`` macros ending in ``_MAX``/``_MIN``/``_C``, ``FP_`` +
uppercase letter), and the POSIX/BSD extras glibc declares in its default (``-std=gnu11``) mode.
"""

from __future__ import annotations

import re

_MATH_FUNCTIONS = (
    "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ilogb ldexp log "
    "log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma tgamma ceil floor "
    "nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo copysign nan nextafter "
    "nexttoward fdim fmax fmin fma"
    # POSIX / BSD / SVID, declared by glibc unless compiled in strict ISO mode
    " j0 j1 jn y0 y1 yn drem finite gamma isinf isnan scalb significand"
).split()
_MATH_MACROS = (
    "HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL FP_ZERO FP_FAST_FMA "
    "FP_FAST_FMAF FP_FAST_FMAL FP_ILOGB0 FP_ILOGBNAN MATH_ERRNO MATH_ERREXCEPT math_errhandling fpclassify "
    "isfinite isgreater isgreaterequal isinf isless islessequal islessgreater isnan isnormal isunordered signbit "
    "float_t double_t lgamma_r lgammaf_r lgammal_r signgam"
).split()
_STRING_FUNCTIONS = (
    "memcpy memmove strcpy strncpy strcat strncat memcmp strcmp strcoll strncmp strxfrm memchr strchr strcspn "
    "strpbrk strrchr strspn strstr strtok memset strerror strlen"
    # POSIX / BSD extras (those outside the str/mem prefixes)
    " bcmp bcopy bzero explicit_bzero ffs ffsl ffsll index rindex stpcpy stpncpy locale_t"
).split()
_STDDEF_NAMES = "ptrdiff_t size_t max_align_t wchar_t NULL offsetof".split()
_STDINT_MACROS = "PTRDIFF_MIN PTRDIFF_MAX SIG_ATOMIC_MIN SIG_ATOMIC_MAX SIZE_MAX WCHAR_MIN WCHAR_MAX WINT_MIN WINT_MAX"
#: Object-like macros GCC predefines in its default GNU modes (a function named ``linux`` would read ``1``).
_GNU_PREDEFINED = "linux unix i386"

#: Every name listed above, with the ``f`` and ``l`` variant of each ``<math.h>`` function.
C_STDLIB_NAMES = frozenset(
    [f + suffix for f in _MATH_FUNCTIONS for suffix in ("", "f", "l")]
    + _MATH_MACROS + _STRING_FUNCTIONS + _STDDEF_NAMES + _STDINT_MACROS.split() + _GNU_PREDEFINED.split()
)

#: Name patterns the headers use or C11 reserves for them (7.31.10, 7.31.13, 7.31.12 and ``M_`` constants).
_RESERVED_PATTERNS = re.compile(
    r"(?:(?:str|mem|wcs)[a-z]\w*"  # <string.h> future functions
    r"|u?int\w*_t"  # <stdint.h> typedefs
    r"|U?INT\w*_(?:MAX|MIN|C)"  # <stdint.h> limit and constant macros
    r"|FP_[A-Z]\w*"  # <math.h> classification and fast-fma macros
    r"|M_[A-Z0-9_]+"  # <math.h> constants (POSIX)
    r"|MATH_ERR\w*"
    r")\Z"
)


def c_stdlib_reserves(name: str) -> bool:
    """Whether ``name`` is declared or reserved by the C headers that exported code includes."""
    return name in C_STDLIB_NAMES or bool(_RESERVED_PATTERNS.match(name))
