// A small GraphQL document parser for the simulator: operations, variables, fields, arguments and
// selection sets (no fragments or directives), enough for the documents RunPod clients send.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "podflow/engine/json.hpp"

namespace podflow::runpod_sim::graphql {

// An argument or input value before variables are substituted. Enum literals are kept apart from
// strings so type checking can tell `SECURE` from `"SECURE"`.
struct Value {
  enum class Kind { null, boolean, integer, floating, string, enumeration, variable, list, object };
  Kind kind = Kind::null;
  Json scalar;                                        // boolean, integer, floating, string
  std::string name;                                   // enumeration, variable
  std::vector<Value> items;                           // list
  std::vector<std::pair<std::string, Value>> fields;  // object
};

struct Field {
  std::string alias;  // the response key; equals name when no alias was given
  std::string name;
  std::vector<std::pair<std::string, Value>> arguments;
  std::vector<Field> selection;
  bool has_selection = false;
  int line = 0;
  int column = 0;
};

struct VariableDefinition {
  std::string name;
  std::string type;  // as written, e.g. "PodRentInterruptableInput!" or "[String]"
  bool has_default = false;
  Value default_value;
};

struct Operation {
  std::string kind;  // "query" or "mutation"
  std::string name;
  std::vector<VariableDefinition> variables;
  std::vector<Field> selection;
};

struct ParseError {
  std::string message;
  int line = 0;
  int column = 0;
};

using ParseResult = std::variant<std::vector<Operation>, ParseError>;

ParseResult parse_document(const std::string& text);

}  // namespace podflow::runpod_sim::graphql
