// Recursive-descent parser for the GraphQL subset described in graphql.hpp and the README.
#include "graphql.hpp"

#include <cctype>
#include <optional>

namespace podflow::runpod_sim::graphql {
namespace {

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  ParseResult document() {
    std::vector<Operation> operations;
    skip_ignored();
    while (pos_ < text_.size()) {
      operations.push_back(operation());
      if (error_) return *error_;
      skip_ignored();
    }
    if (operations.empty()) fail("the document has no operation");
    if (error_) return *error_;
    return operations;
  }

 private:
  void fail(std::string message) {
    if (error_) return;
    error_ = ParseError{std::move(message), line_, column()};
  }
  int column() const { return static_cast<int>(pos_ - line_start_) + 1; }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_ignored() {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c == '\n') {
        ++pos_;
        ++line_;
        line_start_ = pos_;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == ',') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  bool accept(char c) {
    skip_ignored();
    if (peek() != c) return false;
    ++pos_;
    skip_ignored();
    return true;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }

  static bool name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
  }
  std::string name() {
    skip_ignored();
    if (!name_start(peek())) {
      fail("expected a name");
      return {};
    }
    const auto begin = pos_;
    while (!at_end() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) != 0 || text_[pos_] == '_')) {
      ++pos_;
    }
    auto result = text_.substr(begin, pos_ - begin);
    skip_ignored();
    return result;
  }

  Operation operation() {
    Operation op;
    skip_ignored();
    if (peek() == '{') {
      op.kind = "query";
    } else {
      op.kind = name();
      if (op.kind == "subscription") fail("subscriptions are not supported");
      if (op.kind != "query" && op.kind != "mutation") {
        fail("expected 'query', 'mutation' or '{', found '" + op.kind + "'");
      }
      if (name_start(peek())) op.name = name();
      if (accept('(')) {
        while (!error_ && !accept(')')) {
          VariableDefinition def;
          expect('$');
          def.name = name();
          expect(':');
          def.type = type();
          if (accept('=')) {
            def.has_default = true;
            def.default_value = value(/*constant=*/true);
          }
          op.variables.push_back(std::move(def));
          if (at_end()) fail("unterminated variable definitions");
        }
      }
    }
    if (peek() == '@') fail("directives are not supported");
    op.selection = selection_set();
    return op;
  }

  std::string type() {
    std::string result;
    if (accept('[')) {
      result = "[" + type() + "]";
      expect(']');
    } else {
      result = name();
    }
    if (accept('!')) result += "!";
    return result;
  }

  std::vector<Field> selection_set() {
    std::vector<Field> fields;
    expect('{');
    while (!error_ && !accept('}')) {
      if (at_end()) {
        fail("unterminated selection set");
        break;
      }
      if (peek() == '.') {
        fail("fragments are not supported");
        break;
      }
      fields.push_back(field());
    }
    if (fields.empty()) fail("a selection set may not be empty");
    return fields;
  }

  Field field() {
    Field f;
    skip_ignored();
    f.line = line_;
    f.column = column();
    f.name = name();
    f.alias = f.name;
    if (accept(':')) f.name = name();
    if (accept('(')) {
      while (!error_ && !accept(')')) {
        auto arg_name = name();
        expect(':');
        f.arguments.emplace_back(std::move(arg_name), value(/*constant=*/false));
        if (at_end()) fail("unterminated arguments");
      }
    }
    if (peek() == '@') fail("directives are not supported");
    if (peek() == '{') {
      f.has_selection = true;
      f.selection = selection_set();
    }
    return f;
  }

  Value value(bool constant) {
    skip_ignored();
    Value v;
    const char c = peek();
    if (c == '$') {
      if (constant) fail("a default value may not use a variable");
      ++pos_;
      v.kind = Value::Kind::variable;
      v.name = name();
    } else if (c == '"') {
      v.kind = Value::Kind::string;
      v.scalar = string_literal();
    } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c)) != 0) {
      number(v);
    } else if (c == '[') {
      accept('[');
      v.kind = Value::Kind::list;
      while (!error_ && !accept(']')) {
        v.items.push_back(value(constant));
        if (at_end()) fail("unterminated list");
      }
    } else if (c == '{') {
      accept('{');
      v.kind = Value::Kind::object;
      while (!error_ && !accept('}')) {
        auto key = name();
        expect(':');
        v.fields.emplace_back(std::move(key), value(constant));
        if (at_end()) fail("unterminated object");
      }
    } else if (name_start(c)) {
      const auto word = name();
      if (word == "true" || word == "false") {
        v.kind = Value::Kind::boolean;
        v.scalar = word == "true";
      } else if (word == "null") {
        v.kind = Value::Kind::null;
      } else {
        v.kind = Value::Kind::enumeration;
        v.name = word;
      }
    } else {
      fail("expected a value");
    }
    skip_ignored();
    return v;
  }

  void number(Value& v) {
    const auto begin = pos_;
    if (peek() == '-') ++pos_;
    bool is_float = false;
    while (!at_end()) {
      const char c = text_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        ++pos_;
      } else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && is_float)) {
        is_float = true;
        ++pos_;
      } else {
        break;
      }
    }
    const auto literal = text_.substr(begin, pos_ - begin);
    try {
      if (is_float) {
        v.kind = Value::Kind::floating;
        v.scalar = std::stod(literal);
      } else {
        v.kind = Value::Kind::integer;
        v.scalar = std::stoll(literal);
      }
    } catch (const std::exception&) {
      fail("invalid number '" + literal + "'");
    }
  }

  std::string string_literal() {
    ++pos_;  // opening quote
    if (text_.compare(pos_, 2, "\"\"") == 0) {
      fail("block strings are not supported");
      return {};
    }
    std::string out;
    while (!at_end() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\n') {
        fail("unterminated string");
        return out;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) break;
      c = text_[pos_++];
      switch (c) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) {
            fail("bad \\u escape");
            return out;
          }
          const auto code = std::stoul(text_.substr(pos_, 4), nullptr, 16);
          pos_ += 4;
          // UTF-8 encode (BMP only; surrogate pairs are not needed by RunPod clients).
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default:
          out += c;  // \" \\ \/
      }
    }
    if (at_end()) {
      fail("unterminated string");
      return out;
    }
    ++pos_;  // closing quote
    return out;
  }

  const std::string& text_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  int line_ = 1;
  std::optional<ParseError> error_;
};

}  // namespace

ParseResult parse_document(const std::string& text) { return Parser(text).document(); }

}  // namespace podflow::runpod_sim::graphql
