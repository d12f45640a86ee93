"""Full STIX 2.1 pattern parsing with the `stix2-patterns` ANTLR grammar."""

from antlr4 import ParserRuleContext
from antlr4.tree.Tree import TerminalNode
from stix2patterns.exceptions import ParseException
from stix2patterns.v21.grammars.STIXPatternParser import STIXPatternParser as P
from stix2patterns.v21.pattern import Pattern

from .comparison import Comparison, Literal, unescape_string_literal


class MalformedPattern(ValueError):
    """The text is not a valid STIX 2.1 pattern."""


def parse_comparisons(pattern: str) -> tuple[Comparison, ...]:
    """Return every comparison of `pattern` in source order, whatever combines or qualifies them.

    Raises MalformedPattern when the pattern does not parse.
    """
    try:
        tree = Pattern(pattern)
        collector = _Collector(pattern)
        tree.visit(collector)
    except ParseException as exc:
        raise MalformedPattern(str(exc)) from None
    except RecursionError:
        # ANTLR's Python runtime recurses once per nesting level; absurdly nested input is not an
        # indicator anyone can use, and must not take the converter down.
        raise MalformedPattern("pattern nested too deeply") from None
    return tuple(collector.comparisons)


def _span(pattern: str, ctx: ParserRuleContext) -> str:
    # Token indexes are code-point offsets into the input, like Python string indexes; slicing the
    # input keeps the original spacing, which ctx.getText() would drop.
    return pattern[ctx.start.start : ctx.stop.stop + 1]


class _Collector:
    """Finds the comparison (propTest) nodes of a parse tree with an explicit stack."""

    def __init__(self, pattern: str) -> None:
        self._pattern = pattern
        self.comparisons: list[Comparison] = []

    def visit(self, root: P.PatternContext) -> None:
        # Iterative rather than antlr4's recursive walker: the parse itself already bounded the depth,
        # but there is no reason to spend stack twice.
        stack: list[object] = [root]
        while stack:
            node = stack.pop()
            if isinstance(node, P.PropTestContext) and not isinstance(node, P.PropTestParenContext):
                self.comparisons.append(self._comparison(node))
                continue
            children = getattr(node, "children", None)
            if children:
                stack.extend(reversed(children))

    def _comparison(self, ctx: P.PropTestContext) -> Comparison:
        path_ctx = ctx.objectPath()
        object_type, path = _object_path(path_ctx)
        return Comparison(
            text=_span(self._pattern, ctx),
            path_text=_span(self._pattern, path_ctx),
            object_type=object_type,
            path=path,
            operator=_operator(ctx),
            negated=ctx.NOT() is not None,
            literals=_literals(ctx),
        )


def _object_path(ctx: P.ObjectPathContext) -> tuple[str, tuple[str, ...]]:
    object_type = ctx.objectType().getText()
    first = ctx.firstPathComponent()
    path = [_key(first.StringLiteral()) if first.StringLiteral() else first.getText()]
    component = ctx.objectPathComponent()
    if component is not None:
        stack: list[object] = [component]
        while stack:
            node = stack.pop()
            if isinstance(node, P.KeyPathStepContext):
                name = node.StringLiteral()
                path.append(_key(name) if name else node.IdentifierWithoutHyphen().getText())
            elif isinstance(node, P.IndexPathStepContext):
                path.append(node.getText())
            else:
                stack.extend(reversed(getattr(node, "children", None) or ()))
    return object_type, tuple(path)


def _key(token: TerminalNode) -> str:
    return unescape_string_literal(token.getText())


def _operator(ctx: P.PropTestContext) -> str:
    if isinstance(ctx, P.PropTestEqualContext):
        return "=" if ctx.EQ() else "!="
    if isinstance(ctx, P.PropTestOrderContext):
        return (ctx.GT() or ctx.LT() or ctx.GE() or ctx.LE()).getText()
    if isinstance(ctx, P.PropTestSetContext):
        return "IN"
    if isinstance(ctx, P.PropTestLikeContext):
        return "LIKE"
    if isinstance(ctx, P.PropTestRegexContext):
        return "MATCHES"
    if isinstance(ctx, P.PropTestIsSubsetContext):
        return "ISSUBSET"
    if isinstance(ctx, P.PropTestIsSupersetContext):
        return "ISSUPERSET"
    return "EXISTS"


def _literals(ctx: P.PropTestContext) -> tuple[Literal, ...]:
    if isinstance(ctx, P.PropTestEqualContext):
        return (_primitive(ctx.primitiveLiteral()),)
    if isinstance(ctx, P.PropTestSetContext):
        return tuple(_primitive(member) for member in ctx.setLiteral().primitiveLiteral())
    if isinstance(ctx, P.PropTestOrderContext):
        return (_primitive(ctx.orderableLiteral()),)
    if isinstance(ctx, P.PropTestExistsContext):
        return ()
    token = ctx.StringLiteral()
    return (Literal(token.getText(), unescape_string_literal(token.getText())),)


def _primitive(ctx: P.PrimitiveLiteralContext | P.OrderableLiteralContext) -> Literal:
    text = ctx.getText()
    orderable = ctx if isinstance(ctx, P.OrderableLiteralContext) else ctx.orderableLiteral()
    if orderable is not None and orderable.StringLiteral() is not None:
        return Literal(text, unescape_string_literal(text))
    return Literal(text, None)  # numbers, booleans, timestamps, binary and hex literals
