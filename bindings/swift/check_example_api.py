#!/usr/bin/env python3
"""Checks that a Swift example uses only API that the generated Swift declares.

    check_example_api.py EXAMPLE.swift GENERATED.swift [GENERATED.swift ...]

There is no Swift toolchain on the build machine, so this stands in for the compiler's name
lookup: every name the example uses (outside comments and string literals) must be declared in
the example itself, be a known Swift/Foundation name (ALLOWED below), or be declared in the
generated Swift. For generated names it checks, per use:

- a type name (`UserIdentifier`, `EventListener`): a generated struct/class/enum/protocol/typealias;
- a call `Name(label: ...)`, `.member(label: ...)`, `function(label: ...)`: a generated
  initializer of that type, method, function or enum case whose parameter labels include the
  call's labels in the same order (a renamed or removed parameter fails);
- a member `.field` after an expression: a generated `var`/`let`/`func`/`case` of that name;
- an implicit member `.caseName`: a generated enum case (or static member) of that name.

The check is by name, not by type: it catches what a regeneration renames or removes, which is
what it is for. Prints one line per problem and exits 1 if there is any.
"""

import re
import sys

# Swift and Foundation names an example may use without the generated code declaring them.
ALLOWED = {
    # types
    "AnyObject", "Bool", "DispatchQueue", "Error", "Foundation", "Int", "Int64", "McRuntime",
    "NSObject", "Optional", "Self", "Sendable", "String", "Task", "UInt32", "UInt64", "URL", "Void",
    # functions and members
    "absoluteString", "append", "canImport", "path", "print",
}
KEYWORDS = {
    "as", "async", "await", "break", "case", "catch", "class", "continue", "default", "defer",
    "deinit", "do", "else", "enum", "extension", "fallthrough", "false", "final", "for", "func",
    "guard", "if", "import", "in", "init", "is", "let", "nil", "open", "private", "protocol",
    "public", "repeat", "return", "self", "static", "struct", "super", "switch", "throw", "throws",
    "true", "try", "typealias", "var", "weak", "where", "while",
}


def strip_swift(source, keep_interpolations=True):
    """The source with comments removed and string literal text blanked; the code inside a
    string interpolation `\\( ... )` is kept (it uses names too)."""
    out = []
    i, n = 0, len(source)
    # A stack of contexts: "code" or "string"; interpolations push code inside a string.
    stack = ["code"]
    depth = [0]  # parenthesis depth per interpolation, to find its closing ')'
    while i < n:
        c = source[i]
        context = stack[-1]
        if context == "code":
            if source.startswith("//", i):
                while i < n and source[i] != "\n":
                    i += 1
                continue
            if source.startswith("/*", i):
                end = source.find("*/", i + 2)
                i = n if end < 0 else end + 2
                out.append(" ")
                continue
            if c == '"':
                if source.startswith('"""', i):
                    end = source.find('"""', i + 3)
                    i = n if end < 0 else end + 3
                    out.append('""')
                    continue
                stack.append("string")
                out.append('"')
                i += 1
                continue
            if c == "(" and len(stack) > 1:
                depth[-1] += 1
            if c == ")" and len(stack) > 1:
                if depth[-1] == 0:
                    stack.pop()
                    depth.pop()
                    out.append(" ")
                    i += 1
                    continue
                depth[-1] -= 1
            out.append(c)
            i += 1
        else:  # string
            if c == "\\" and i + 1 < n and source[i + 1] == "(" and keep_interpolations:
                stack.append("code")
                depth.append(0)
                out.append(" ")
                i += 2
                continue
            if c == "\\":
                i += 2
                continue
            if c == '"':
                stack.pop()
                out.append('"')
                i += 1
                continue
            if c == "\n":  # unterminated: give up on this string
                stack.pop()
            i += 1
    return "".join(out)


def split_top_level(text):
    """`text` split at commas outside (), [], <>."""
    parts, level, current = [], 0, []
    for c in text:
        if c in "([<{":
            level += 1
        elif c in ")]>}":
            level -= 1
        if c == "," and level == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def balanced(text, open_at):
    """The text between the '(' at `open_at` and its matching ')'."""
    level = 0
    for j in range(open_at, len(text)):
        if text[j] == "(":
            level += 1
        elif text[j] == ")":
            level -= 1
            if level == 0:
                return text[open_at + 1 : j]
    return text[open_at + 1 :]


def declared_labels(params):
    """Argument labels of a declaration's parameter list (`_` ones left out)."""
    labels = []
    for param in split_top_level(params):
        words = param.split(":")[0].split()
        if words and words[0] != "_":
            labels.append(words[0])
    return labels


def call_labels(args):
    """Labels of a call's arguments (unlabelled ones left out)."""
    labels = []
    for arg in split_top_level(args):
        match = re.match(r"\s*(\w+)\s*:(?!:)", arg)
        if match:
            labels.append(match.group(1))
    return labels


def is_subsequence(used, declared):
    it = iter(declared)
    return all(label in it for label in used)


class Generated:
    """The names the generated Swift declares, with the parameter labels of each callable."""

    def __init__(self, source):
        code = strip_swift(source, keep_interpolations=False)
        self.types = set(re.findall(r"\b(?:struct|class|enum|protocol|typealias)\s+(\w+)", code))
        self.members = set(re.findall(r"\b(?:var|let)\s+(\w+)\s*:", code))
        self.cases = set()
        # callable name -> list of label lists (functions, enum cases with values, initializers)
        self.signatures = {}
        for match in re.finditer(r"\bfunc\s+(\w+)\s*(?:<[^>]*>)?\(", code):
            params = balanced(code, match.end() - 1)
            self.signatures.setdefault(match.group(1), []).append(declared_labels(params))
            self.members.add(match.group(1))
        for match in re.finditer(r"\bcase\s+(\w+)\b(\()?", code):
            self.cases.add(match.group(1))
            labels = declared_labels(balanced(code, match.end() - 1)) if match.group(2) else []
            self.signatures.setdefault(match.group(1), []).append(labels)
        # Initializers, by the type whose body they are in.
        for match in re.finditer(r"\b(?:struct|class|enum)\s+(\w+)[^{\n]*\{", code):
            body_end = code.find("\n}", match.end())
            body = code[match.end() : body_end if body_end > 0 else len(code)]
            for init in re.finditer(r"\binit\s*\(", body):
                labels = declared_labels(balanced(body, init.end() - 1))
                self.signatures.setdefault(match.group(1), []).append(labels)


def check(example_path, generated_paths):
    example_source = open(example_path, encoding="utf-8").read()
    generated = Generated("\n".join(open(p, encoding="utf-8").read() for p in generated_paths))
    # Compiler directives (`#if canImport(...)`) are no code.
    code = re.sub(r"(?m)^\s*#.*$", "", strip_swift(example_source))
    local = set(
        re.findall(r"\b(?:func|class|struct|enum|protocol|typealias|let|var|case)\s+(\w+)", code)
    )
    # Parameter names of the example's own functions and closures, and pattern bindings.
    for match in re.finditer(r"\b(?:func\s+\w+|init)\s*\(", code):
        for param in split_top_level(balanced(code, match.end() - 1)):
            local.update(param.split(":")[0].split())
    local.update(re.findall(r"\bcase\s+let\s+\.\w+\((\w+)\)", code))
    local.update(re.findall(r"\[weak\s+(\w+)\]", code))
    local.update(re.findall(r"\bif\s+let\s+(\w+)", code))
    local.update(re.findall(r"\bfor\s+(\w+)\s+in\b", code))
    for names in re.findall(r"\{\s*(?:\[[^\]]*\]\s*)?(\w+(?:\s*,\s*\w+)*)\s+in\b", code):
        local.update(re.split(r"\s*,\s*", names))
    problems = []

    def line_of(pos):
        return code.count("\n", 0, pos) + 1

    def known(name):
        return name in local or name in ALLOWED or name in KEYWORDS

    for match in re.finditer(r"(\.)?\b([A-Za-z_]\w*)\b(\s*\()?", code):
        dot, name, call = match.group(1), match.group(2), match.group(3)
        start = match.start(2)
        before = code[: match.start()].rstrip()
        # Declarations and argument labels are not uses (`case let .x(v)` is a use of x).
        if not dot and re.search(
            r"\b(?:func|class|struct|enum|protocol|typealias|let|var|case|import)$", before
        ):
            continue
        if not dot and re.match(r"\s*:(?!:)", code[match.end(2) :]) and not call:
            continue  # a label `name:` (in a call or declaration) or a parameter name
        if name[0].isdigit() or before.endswith("@"):  # a number, an attribute (@escaping)
            continue
        where = f"{example_path}:{line_of(start)}"
        generated_name = (
            name in generated.types or name in generated.members or name in generated.cases
            or name in generated.signatures
        )
        if known(name) and not (call and generated_name and name not in local):
            continue
        if not generated_name:
            kind = "member" if dot else ("call" if call else "name")
            problems.append(f"{where}: {kind} `{name}` is declared nowhere in the generated Swift")
            continue
        if dot and not call:
            # `.field` after an expression, or an implicit member (an enum case).
            implicit = not re.search(r"[\w)\]?!]$", code[: match.start()])
            if implicit and name not in generated.cases and name not in generated.members:
                problems.append(f"{where}: `.{name}` is no case of a generated enum")
            elif not implicit and name not in generated.members and name not in generated.cases:
                problems.append(f"{where}: `.{name}` is no generated field or method")
            continue
        if call:
            used = call_labels(balanced(code, match.end() - 1))
            candidates = generated.signatures.get(name, [])
            if not candidates and name in generated.types:
                candidates = [[]]
            if not any(is_subsequence(used, labels) for labels in candidates):
                problems.append(
                    f"{where}: `{name}({', '.join(l + ':' for l in used)})` matches no generated "
                    f"signature of `{name}` (have: {candidates})"
                )
            continue
        if name[0].isupper() and name not in generated.types:
            problems.append(f"{where}: type `{name}` is declared nowhere in the generated Swift")
    for problem in problems:
        print(problem)
    return not problems


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(0 if check(sys.argv[1], sys.argv[2:]) else 1)
