#!/usr/bin/python3
"""Validates what the RunPod client sends against RunPod's published contracts.

  runpod_schema_check.py graphql SAMPLES_EXE SCHEMA_DIR  every GraphQL document against the SDL
                                                         subset, and each `input` variable against
                                                         its input type
  runpod_schema_check.py rest SAMPLES_EXE SCHEMA_DIR     every REST body against the OpenAPI
                                                         request schema (draft 2020-12)

Run with Debian's /usr/bin/python3 (python3-graphql-core, python3-jsonschema).
"""
import json
import os
import subprocess
import sys


def fail(message):
    print("FAIL: " + message)
    return 1


def check_input_object(schema, type_name, value, where):
    """Checks a variable value against an input type: known fields, required fields present."""
    from graphql.type.definition import GraphQLInputObjectType, GraphQLNonNull, GraphQLList

    errors = []
    input_type = schema.get_type(type_name)
    if not isinstance(input_type, GraphQLInputObjectType):
        return ["%s: %s is not an input type" % (where, type_name)]
    fields = input_type.fields
    for key in value:
        if key not in fields:
            errors.append("%s: %s has no field %r" % (where, type_name, key))
    for name, field in fields.items():
        if isinstance(field.type, GraphQLNonNull) and value.get(name) is None:
            errors.append("%s: %s.%s is required" % (where, type_name, name))
    for key, item in value.items():
        if key not in fields:
            continue
        field_type = fields[key].type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        if isinstance(field_type, GraphQLList) and isinstance(item, list):
            inner = field_type.of_type
            if isinstance(inner, GraphQLNonNull):
                inner = inner.of_type
            if isinstance(inner, GraphQLInputObjectType):
                for index, element in enumerate(item):
                    errors += check_input_object(schema, inner.name, element,
                                                 "%s.%s[%d]" % (where, key, index))
    return errors


def check_graphql(samples, schema_dir):
    from graphql import build_ast_schema, parse, validate
    from graphql.language import ast

    with open(os.path.join(schema_dir, "runpod-graphql-subset.graphql")) as f:
        schema = build_ast_schema(parse(f.read()))
    problems = []
    for sample in samples["graphql"]:
        document = parse(sample["query"])
        for error in validate(schema, document):
            problems.append("%s: %s" % (sample["name"], error.message))
        # Declared variables must all be given, and `input` must fit its input type.
        for definition in document.definitions:
            if not isinstance(definition, ast.OperationDefinition):
                continue
            declared = {}
            for variable in definition.variable_definitions or []:
                type_node = variable.type
                required = isinstance(type_node, ast.NonNullType)
                while not isinstance(type_node, ast.NamedType):
                    type_node = type_node.type
                declared[variable.variable.name.value] = (type_node.name.value, required)
            for name in sample["variables"]:
                if name not in declared:
                    problems.append("%s: variable $%s is not declared" % (sample["name"], name))
            for name, (type_name, required) in declared.items():
                value = sample["variables"].get(name)
                if value is None:
                    if required:
                        problems.append("%s: required $%s missing" % (sample["name"], name))
                    continue
                if isinstance(value, dict):
                    problems += check_input_object(schema, type_name, value,
                                                   "%s $%s" % (sample["name"], name))
    return problems


def check_rest(samples, schema_dir):
    import jsonschema

    with open(os.path.join(schema_dir, "runpod-rest-v2.openapi.json")) as f:
        document = json.load(f)
    resolver = jsonschema.RefResolver.from_schema(document)
    problems = []

    def validator_for(name):
        schema = document["components"]["schemas"][name]
        return jsonschema.Draft202012Validator(schema, resolver=resolver)

    # The check must be able to fail: a v1-style body is rejected.
    wrong = {"name": "x", "imageName": "y", "gpuTypeIds": ["NVIDIA RTX A4000"]}
    if not list(validator_for("CreatePodRequest").iter_errors(wrong)):
        problems.append("self-check: a v1-style body passed CreatePodRequest")
    for sample in samples["rest"]:
        for error in validator_for(sample["schema"]).iter_errors(sample["body"]):
            problems.append("%s: %s at %s" % (sample["name"], error.message,
                                               "/".join(str(p) for p in error.absolute_path)))
    return problems


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("graphql", "rest"):
        print(__doc__)
        return 2
    mode, samples_exe, schema_dir = sys.argv[1:]
    samples = json.loads(subprocess.run([samples_exe], check=True, capture_output=True,
                                        text=True).stdout)
    problems = check_graphql(samples, schema_dir) if mode == "graphql" else check_rest(
        samples, schema_dir)
    count = len(samples[mode])
    if problems:
        for problem in problems:
            print("FAIL: " + problem)
        return 1
    print("ok: %d %s samples valid" % (count, mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
