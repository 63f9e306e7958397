// JSON Schema -> GBNF: the official JSON-Schema-Test-Suite (every case of every group the compiler
// accepts), 2020-12 features the suite lacks, patterns against std::regex, integer and decimal
// bounds against direct comparisons, formats against a calendar, and hostile schemas.

#include <algorithm>   // std::find, std::sort
#include <chrono>      // std::chrono::steady_clock
#include <cmath>       // std::floor
#include <cstdio>      // std::printf, std::snprintf
#include <filesystem>  // std::filesystem
#include <fstream>     // std::ifstream
#include <iterator>    // std::size
#include <memory>      // std::make_shared, std::shared_ptr
#include <regex>       // std::regex, std::regex_search
#include <set>         // std::set
#include <string>      // std::string
#include <utility>     // std::pair
#include <vector>      // std::vector

#include <catch2/catch.hpp>

#include "glrnn/constrain/grammar.hpp"
#include "glrnn/constrain/grammar_matcher.hpp"
#include "glrnn/constrain/json_schema.hpp"
#include "support/all_strings.hpp"

#ifndef GLRNN_JSON_SCHEMA_SUITE
#define GLRNN_JSON_SCHEMA_SUITE "/usr/share/json-schema-test-suite/tests"
#endif

using glrnn::Grammar;
using glrnn::grammar_accepts;
using glrnn::json_schema_to_grammar;
using Catch::Matchers::Contains;
using Json = nlohmann::ordered_json;

namespace {

/// Writes an instance compactly in the grammar's layout (json_schema.hpp's header comment):
/// integral numbers as integers, an enum/const value as the schema spells it, and object keys
/// in the order of the schema's properties (a depth-first walk over $ref and the applicators),
/// then the required-only names, then the rest in the instance's order.
class LayoutWriter {
 public:
  /// `integral_floats_as_integers`: false for draft-04, where 1.0 is not an integer.
  LayoutWriter(const Json& root, bool ref_replaces_siblings, bool integral_floats_as_integers = true)
      : root_(root), ref_replaces_siblings_(ref_replaces_siblings), integral_floats_as_integers_(integral_floats_as_integers) {
    if (root.is_object() && root.contains("$id") && root["$id"].is_string()) base_ = root["$id"].get<std::string>();
  }

  std::string write(const Json& value) { return write(value, {&root_}); }

 private:
  std::string write(const Json& value, const std::vector<const Json*>& schemas) {
    std::vector<const Json*> all;
    std::set<const Json*> seen;
    for (const Json* s : schemas) collect(s, all, seen);
    for (const Json* s : all) {
      const auto spelled = [&](const Json& candidate) { return glrnn::detail::json_equal(candidate, value); };
      if (s->contains("const") && spelled((*s)["const"])) return canonical((*s)["const"]);
      if (s->contains("enum") && (*s)["enum"].is_array())
        for (const Json& e : (*s)["enum"])
          if (spelled(e)) return canonical(e);
    }
    if (value.is_object()) {
      std::vector<std::string> order;
      std::set<const Json*> visited;
      for (const Json* s : schemas) names(s, "properties", order, visited);
      visited.clear();
      for (const Json* s : schemas) names(s, "required", order, visited);
      for (auto it = value.begin(); it != value.end(); ++it)
        if (std::find(order.begin(), order.end(), it.key()) == order.end()) order.push_back(it.key());
      std::string out = "{";
      for (const std::string& key : order) {
        if (!value.contains(key)) continue;
        std::vector<const Json*> children;
        for (const Json* s : all) {
          if (s->contains("properties") && (*s)["properties"].contains(key)) children.push_back(&(*s)["properties"][key]);
          else if (s->contains("additionalProperties")) children.push_back(&(*s)["additionalProperties"]);
        }
        out += (out.size() > 1 ? "," : "") + Json(key).dump() + ":" + write(value[key], children);
      }
      return out + "}";
    }
    if (value.is_array()) {
      std::string out = "[";
      for (std::size_t i = 0; i < value.size(); ++i) {
        std::vector<const Json*> children;
        for (const Json* s : all) {
          const Json* items = s->contains("items") ? &(*s)["items"] : nullptr;
          const Json* prefix = s->contains("prefixItems") ? &(*s)["prefixItems"] : nullptr;
          if (prefix && prefix->is_array() && i < prefix->size()) children.push_back(&(*prefix)[i]);
          else if (prefix && items) children.push_back(items);
          else if (items && items->is_array() && i < items->size()) children.push_back(&(*items)[i]);
          else if (items && items->is_array() && s->contains("additionalItems")) children.push_back(&(*s)["additionalItems"]);
          else if (items && !items->is_array()) children.push_back(items);
        }
        out += (i ? "," : "") + write(value[i], children);
      }
      return out + "]";
    }
    return canonical(value);
  }

  std::string canonical(const Json& v) const {
    if (integral_floats_as_integers_ && v.is_number_float() && v.get<double>() == std::floor(v.get<double>()) && std::abs(v.get<double>()) < 9e15)
      return std::to_string(static_cast<long long>(v.get<double>()));
    if (v.is_array()) {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + canonical(v[i]);
      return out + "]";
    }
    if (v.is_object()) {
      std::string out = "{";
      for (auto it = v.begin(); it != v.end(); ++it) out += (out.size() > 1 ? "," : "") + Json(it.key()).dump() + ":" + canonical(it.value());
      return out + "}";
    }
    return v.dump();
  }

  const Json* resolve(const Json& ref) const {
    if (!ref.is_string()) return nullptr;
    std::string r = ref.get<std::string>();
    if (!base_.empty() && r.rfind(base_, 0) == 0) r = r.substr(base_.size());
    if (r.empty() || r[0] != '#') return nullptr;
    std::string decoded;
    for (std::size_t i = 1; i < r.size(); ++i) {
      if (r[i] == '%' && i + 2 < r.size()) {
        decoded += static_cast<char>(std::stoi(r.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += r[i];
      }
    }
    try {
      return &root_.at(Json::json_pointer(decoded));
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  /// Every subschema that may apply along with s: $ref targets and every applicator branch.
  void collect(const Json* s, std::vector<const Json*>& out, std::set<const Json*>& seen) const {
    if (!s || !s->is_object() || !seen.insert(s).second) return;
    if (s->contains("$ref") && ref_replaces_siblings_) return collect(resolve((*s)["$ref"]), out, seen);
    out.push_back(s);
    if (s->contains("$ref")) collect(resolve((*s)["$ref"]), out, seen);
    for (const char* k : {"allOf", "anyOf", "oneOf"})
      if (s->contains(k) && (*s)[k].is_array())
        for (const Json& b : (*s)[k]) collect(&b, out, seen);
  }

  /// The names of `properties` keys (or `required` entries) in depth-first keyword order.
  void names(const Json* s, const char* keyword, std::vector<std::string>& order, std::set<const Json*>& visited) const {
    if (!s || !s->is_object() || !visited.insert(s).second) return;
    if (s->contains("$ref") && ref_replaces_siblings_) return names(resolve((*s)["$ref"]), keyword, order, visited);
    for (auto it = s->begin(); it != s->end(); ++it) {
      const auto add = [&](const std::string& n) {
        if (std::find(order.begin(), order.end(), n) == order.end()) order.push_back(n);
      };
      if (it.key() == "$ref") names(resolve(it.value()), keyword, order, visited);
      else if ((it.key() == "allOf" || it.key() == "anyOf" || it.key() == "oneOf") && it.value().is_array())
        for (const Json& b : it.value()) names(&b, keyword, order, visited);
      else if (it.key() == keyword && std::string(keyword) == "properties" && it.value().is_object())
        for (auto p = it.value().begin(); p != it.value().end(); ++p) add(p.key());
      else if (it.key() == keyword && std::string(keyword) == "required" && it.value().is_array())
        for (const Json& n : it.value())
          if (n.is_string()) add(n.get<std::string>());
    }
  }

  const Json& root_;
  bool ref_replaces_siblings_;
  bool integral_floats_as_integers_;
  std::string base_;
};

/// A grammar's matcher for many texts: the stacks are expanded once and shared.
class Matcher {
 public:
  explicit Matcher(const Json& schema) : text_(json_schema_to_grammar(schema)) {
    stacks_ = std::make_shared<glrnn::GrammarStacks>(std::make_shared<const Grammar>(Grammar::parse(text_)));
  }
  bool operator()(const std::string& text) const {
    glrnn::GrammarMatcher m(stacks_);
    return m.accept(text) && m.can_end();
  }
 private:
  std::string text_;
  std::shared_ptr<glrnn::GrammarStacks> stacks_;
};

/// The InputError's message for a refused schema ("" when it compiles).
std::string refusal(const Json& schema) {
  try {
    json_schema_to_grammar(schema);
  } catch (const glrnn::InputError& e) {
    return e.what();
  }
  return "";
}

// ---- The JSON-Schema-Test-Suite

/// Valid instances whose text in the layout the grammar rejects by design (an invalid instance
/// accepted is never excused).
struct Excuse {
  const char* file;
  const char* group;
  const char* test;
  const char* reason;
};
const Excuse kExcuses[] = {
    {"bignum.json", "integer", "a bignum is an integer", "more digits than kJsonMaxIntegerDigits"},
    {"bignum.json", "integer", "a negative bignum is an integer", "more digits than kJsonMaxIntegerDigits"},
};

bool excused(const std::string& file, const std::string& group, const std::string& test) {
  for (const Excuse& e : kExcuses)
    if (file == e.file && group == e.group && test == e.test) return true;
  return false;
}

struct SuiteCounts {
  int groups_compiled = 0, groups_refused = 0, cases_passed = 0, cases_failed = 0, cases_excused = 0;
  std::vector<std::string> failures, refusals;
};

const char* kDraftUris[][2] = {{"draft4", "http://json-schema.org/draft-04/schema#"},
                               {"draft6", "http://json-schema.org/draft-06/schema#"},
                               {"draft7", "http://json-schema.org/draft-07/schema#"}};

/// Runs one file of the suite: each group's schema (with the draft's $schema added) compiled,
/// each case's instance checked in the layout.
SuiteCounts run_suite_file(const std::filesystem::path& path, const std::string& draft) {
  SuiteCounts counts;
  std::ifstream in(path);
  const Json groups = Json::parse(in);
  const std::string file = path.filename().string();
  for (const Json& group : groups) {
    Json schema = group["schema"];
    const bool legacy = true;  // every draft in the Debian package has $ref replace its siblings
    if (schema.is_object() && !schema.contains("$schema"))
      for (const auto& d : kDraftUris)
        if (draft == d[0]) schema["$schema"] = d[1];
    const std::string description = group["description"].get<std::string>();
    std::string text;
    try {
      text = json_schema_to_grammar(schema);
    } catch (const glrnn::InputError& e) {
      ++counts.groups_refused;
      counts.refusals.push_back(description + ": " + e.what());
      // A schema refused for accepting nothing: then the suite must call every case invalid.
      if (std::string(e.what()).find("accepts no value") != std::string::npos)
        for (const Json& test : group["tests"])
          if (test["valid"].get<bool>()) counts.failures.push_back(file + " / " + description + ": refused as empty but has a valid case");
      continue;
    }
    ++counts.groups_compiled;
    Grammar grammar = Grammar::parse(text);
    for (const Json& test : group["tests"]) {
      const std::string instance = LayoutWriter(schema, legacy, draft != "draft4").write(test["data"]);
      const bool valid = test["valid"].get<bool>();
      const bool accepted = grammar_accepts(grammar, instance);
      const std::string test_description = test["description"].get<std::string>();
      if (accepted == valid) {
        ++counts.cases_passed;
      } else if (valid && excused(file, description, test_description)) {
        ++counts.cases_excused;
      } else {
        ++counts.cases_failed;
        counts.failures.push_back(file + " / " + description + " / " + test_description + ": " + instance +
                                  (valid ? " is valid but rejected" : " is invalid but accepted") + "\n" + text);
      }
    }
  }
  return counts;
}

std::vector<std::filesystem::path> suite_files(const std::string& draft) {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path dir = std::filesystem::path(GLRNN_JSON_SCHEMA_SUITE) / draft;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string suite_name(const std::filesystem::path& file, const std::string& draft) {
  return std::filesystem::relative(file, std::filesystem::path(GLRNN_JSON_SCHEMA_SUITE) / draft).string();
}

}  // namespace

TEST_CASE("JSON-Schema-Test-Suite: every case of every compiled group is decided as the suite says", "[constrain]") {
  if (!std::filesystem::is_directory(GLRNN_JSON_SCHEMA_SUITE)) {
    WARN("JSON-Schema-Test-Suite not found at " GLRNN_JSON_SCHEMA_SUITE " (Debian package json-schema-test-suite); skipped");
    SUCCEED();
    return;
  }
  int compiled = 0, cases = 0;
  for (const std::string draft : {"draft4", "draft6", "draft7"}) {
    for (const auto& file : suite_files(draft)) {
      const SuiteCounts counts = run_suite_file(file, draft);
      compiled += counts.groups_compiled;
      cases += counts.cases_passed;
      for (const std::string& failure : counts.failures) {
        INFO(draft << "/" << failure);
        CHECK(false);
      }
    }
  }
  // Debian's suite (2.0.0) has 211 groups the compiler accepts over the three drafts, with 717
  // cases; fewer means a regression.
  CHECK(compiled >= 211);
  CHECK(cases >= 717);
}

TEST_CASE("JSON-Schema-Test-Suite report: groups compiled and refused, cases passed per file", "[.report]") {
  for (const std::string draft : {"draft4", "draft6", "draft7"}) {
    std::printf("\n### %s\n\n| file | groups compiled | refused | cases passed | failed | excused |\n| --- | --- | --- | --- | --- | --- |\n",
                draft.c_str());
    SuiteCounts total;
    std::vector<std::string> refusals;
    for (const auto& file : suite_files(draft)) {
      const SuiteCounts c = run_suite_file(file, draft);
      std::printf("| %s | %d | %d | %d | %d | %d |\n", suite_name(file, draft).c_str(), c.groups_compiled, c.groups_refused,
                  c.cases_passed, c.cases_failed, c.cases_excused);
      total.groups_compiled += c.groups_compiled;
      total.groups_refused += c.groups_refused;
      total.cases_passed += c.cases_passed;
      total.cases_failed += c.cases_failed;
      total.cases_excused += c.cases_excused;
      for (const std::string& r : c.refusals) refusals.push_back(suite_name(file, draft) + ": " + r);
    }
    std::printf("| total | %d | %d | %d | %d | %d |\n\nRefused:\n", total.groups_compiled, total.groups_refused,
                total.cases_passed, total.cases_failed, total.cases_excused);
    for (const std::string& r : refusals) std::printf("- %s\n", r.c_str());
  }
  SUCCEED();
}

// ---- 2020-12 features and the layout

TEST_CASE("JSON Schema: objects keep the schema's key order, then additional properties", "[constrain]") {
  const Json schema = Json::parse(R"({"type": "object",
      "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array"}},
      "required": ["age", "id"]})");
  Matcher m(schema);
  CHECK(m(R"({"age":3,"id":null})"));
  CHECK(m(R"({"name":"x","age":3,"tags":[],"id":1,"extra":true,"more":{}})"));
  CHECK(m(R"({"name":"x","age":3,"id":1,"zz":0})"));
  CHECK_FALSE(m(R"({"age":3,"name":"x","id":1})"));   // declared names out of order
  CHECK_FALSE(m(R"({"name":"x","id":1})"));           // required "age" missing
  CHECK_FALSE(m(R"({"age":3})"));                     // required-only "id" missing
  CHECK_FALSE(m(R"({"age":3,"id":1,"name":"x"})"));   // a declared name as an additional one
  CHECK_FALSE(m(R"({"age":3,"id":1,"age":4})"));
  CHECK_FALSE(m(R"({"age":"3","id":1})"));
  // Whitespace between tokens, up to kJsonMaxWhitespace characters.
  CHECK(m("{\n  \"age\" : 3,\n\t\"id\": [ 1 , 2 ]\r\n}"));
  CHECK(m("{" + std::string(glrnn::kJsonMaxWhitespace, ' ') + R"("age":3,"id":1})"));
  CHECK_FALSE(m("{" + std::string(glrnn::kJsonMaxWhitespace + 1, ' ') + R"("age":3,"id":1})"));
  CHECK_FALSE(m(R"( {"age":3,"id":1})"));

  Matcher closed(Json::parse(R"({"properties": {"a": {"type": "integer"}}, "additionalProperties": false})"));
  CHECK(closed(R"({})"));
  CHECK(closed(R"({"a":1})"));
  CHECK_FALSE(closed(R"({"b":1})"));
  CHECK_FALSE(closed(R"({"a":1,"b":1})"));
  Matcher typed(Json::parse(R"({"properties": {"a": {"type": "integer"}}, "additionalProperties": {"type": "string"}})"));
  CHECK(typed(R"({"a":1,"b":"x","ab":"y","":"z"})"));
  CHECK(typed(R"({"b":"x"})"));
  CHECK_FALSE(typed(R"({"a":"1"})"));
  CHECK_FALSE(typed(R"({"b":1})"));
  CHECK_FALSE(typed(R"({"a":1,"a":1})"));
  // Keys are written canonically; a key with escapes is still told from the declared names.
  Matcher escaped(Json::parse(R"({"properties": {"a\"b": {"type": "null"}, "é\n": {"type": "null"}}, "additionalProperties": {"type": "integer"}})"));
  CHECK(escaped(R"({"a\"b":null,"é\n":null,"a\"":1,"é":2,"é\t":3})"));
  CHECK_FALSE(escaped(R"({"a\"b":null,"a\"b":1})"));
  CHECK_FALSE(escaped(R"({"é\n":1})"));
  CHECK_FALSE(escaped(R"({"\u00e9\n":1})"));  // not the canonical spelling of a key
}

TEST_CASE("JSON Schema: allOf merges, anyOf distributes over the other keywords", "[constrain]") {
  Matcher m(Json::parse(R"({"type": "object", "properties": {"kind": {"enum": ["a", "b"]}},
      "allOf": [{"properties": {"x": {"type": "integer", "minimum": 0}}}, {"properties": {"x": {"maximum": 10}}, "required": ["x"]}],
      "anyOf": [{"required": ["kind"]}, {"properties": {"y": {"const": 1}}, "required": ["y"]}]})"));
  CHECK(m(R"({"kind":"a","x":3})"));
  CHECK(m(R"({"x":10,"y":1})"));
  CHECK(m(R"({"kind":"b","x":0,"y":2})"));  // the first branch does not constrain y
  CHECK_FALSE(m(R"({"x":3})"));
  CHECK_FALSE(m(R"({"kind":"a","x":11})"));
  CHECK_FALSE(m(R"({"kind":"a","x":-1})"));
  CHECK_FALSE(m(R"({"kind":"c","x":1})"));
  CHECK_FALSE(m(R"({"x":1,"y":2})"));
  // additionalProperties of one allOf branch applies to names the other declares.
  Matcher strict(Json::parse(R"({"allOf": [{"properties": {"a": {}}, "additionalProperties": false}, {"properties": {"b": {}}}]})"));
  CHECK(strict(R"({"a":1})"));
  CHECK_FALSE(strict(R"({"a":1,"b":2})"));
  // Type intersection across branches.
  Matcher both(Json::parse(R"({"allOf": [{"type": ["integer", "string"]}, {"type": ["number", "null"]}]})"));
  CHECK(both("5"));
  CHECK_FALSE(both("5.5"));
  CHECK_FALSE(both(R"("5")"));
  CHECK_FALSE(both("null"));
}

TEST_CASE("JSON Schema: oneOf compiles where its branches are provably disjoint", "[constrain]") {
  // A discriminated union: the branches require "type" with different const values.
  const Json schema = Json::parse(R"({"oneOf": [
      {"type": "object", "properties": {"type": {"const": "cat"}, "lives": {"type": "integer"}}, "required": ["type"]},
      {"type": "object", "properties": {"type": {"const": "dog"}, "good": {"type": "boolean"}}, "required": ["type", "good"]},
      {"type": "string"}, {"type": "array", "maxItems": 0}]})");
  Matcher m(schema);
  CHECK(m(R"({"type":"cat","lives":9})"));
  CHECK(m(R"({"type":"dog","good":true})"));
  CHECK(m(R"("rex")"));
  CHECK(m("[]"));
  CHECK_FALSE(m(R"({"type":"dog"})"));
  CHECK_FALSE(m(R"({"type":"cow"})"));
  CHECK_FALSE(m("[1]"));
  // Closed objects with different required names are disjoint too.
  CHECK(refusal(Json::parse(R"({"type": "object", "oneOf": [{"properties": {"a": {}}, "required": ["a"], "additionalProperties": false},
      {"properties": {"b": {}}, "required": ["b"], "additionalProperties": false}]})")) == "");
  CHECK(refusal(Json::parse(R"({"oneOf": [{"enum": [1, 2]}, {"enum": [3, "a"]}, {"type": "null"}]})")) == "");
  // Overlapping branches are refused, naming oneOf and the branches.
  CHECK_THAT(refusal(Json::parse(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})")),
             Contains("\"oneOf\" at the root") && Contains("branches 0 and 1"));
  CHECK_THAT(refusal(Json::parse(R"({"oneOf": [{"enum": [1, 2]}, {"enum": [2.0, 3]}]})")), Contains("\"oneOf\""));
  CHECK_THAT(refusal(Json::parse(R"({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]})")), Contains("\"oneOf\""));
}

TEST_CASE("JSON Schema: enum and const values in their canonical spelling", "[constrain]") {
  Matcher m(Json::parse(R"({"enum": [1, 2.5, "a\"b", null, [1, {"k": true}], {"x": 1.0, "y": "é"}]})"));
  CHECK(m("1"));
  CHECK(m("2.5"));
  CHECK(m(R"("a\"b")"));
  CHECK(m("null"));
  CHECK(m(R"([1,{"k":true}])"));
  CHECK(m(R"({"x":1,"y":"é"})"));
  CHECK_FALSE(m("1.0"));
  CHECK_FALSE(m("2"));
  CHECK_FALSE(m(R"({"y":"é","x":1})"));
  // type and the checked keywords filter the values; others beside enum are refused.
  Matcher typed(Json::parse(R"({"type": "string", "enum": ["a", "bb", 1, "ccc"], "minLength": 2, "maximum": 0})"));
  CHECK(typed(R"("bb")"));
  CHECK(typed(R"("ccc")"));
  CHECK_FALSE(typed(R"("a")"));
  CHECK_FALSE(typed("1"));
  CHECK_THAT(refusal(Json::parse(R"({"enum": ["a", "b"], "pattern": "a"})")), Contains("\"pattern\" beside \"enum\""));
  CHECK(refusal(Json::parse(R"({"enum": [1, 2], "pattern": "a"})")) == "");  // no string value: pattern is moot
  Matcher filtered(Json::parse(R"({"enum": [3, 4, "x", null], "minimum": 3.5, "type": ["integer", "string"]})"));
  CHECK(filtered("4"));
  CHECK(filtered(R"("x")"));
  CHECK_FALSE(filtered("3"));
  CHECK_FALSE(filtered("null"));
  CHECK_THAT(refusal(Json::parse(R"({"enum": [1], "minimum": 2})")), Contains("accepts no value"));
}

TEST_CASE("JSON Schema: arrays with prefixItems, items, minItems and maxItems", "[constrain]") {
  Matcher tuple(Json::parse(R"({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"}, "minItems": 1, "maxItems": 4})"));
  CHECK(tuple("[1]"));
  CHECK(tuple(R"([1,"a"])"));
  CHECK(tuple(R"([1,"a",true,false])"));
  CHECK(tuple(R"([ 1 , "a" ])"));
  CHECK_FALSE(tuple("[]"));
  CHECK_FALSE(tuple(R"([1,"a",true,false,true])"));
  CHECK_FALSE(tuple(R"(["a"])"));
  CHECK_FALSE(tuple(R"([1,"a",1])"));
  Matcher closed(Json::parse(R"({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false})"));
  CHECK(closed("[]"));
  CHECK(closed("[1]"));
  CHECK(closed(R"([1,"a"])"));
  CHECK_FALSE(closed(R"([1,"a",null])"));
  Matcher draft7_tuple(Json::parse(R"({"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"const": 0}], "additionalItems": {"type": "string"}, "minItems": 2})"));
  CHECK(draft7_tuple(R"([0,"x","y"])"));
  CHECK_FALSE(draft7_tuple("[0]"));
  CHECK_FALSE(draft7_tuple("[0,1]"));
  // Every count from 0 to 7 against minItems/maxItems for a few bounds.
  for (int lo = 0; lo <= 3; ++lo)
    for (int hi : {-1, 0, 2, 3, 5}) {
      Json schema = Json::parse(R"({"type": "array", "prefixItems": [{"const": 0}, {"const": 1}], "items": {"const": 9}})");
      schema["minItems"] = lo;
      if (hi >= 0) schema["maxItems"] = hi;
      if (hi >= 0 && lo > hi) {
        CHECK_THAT(refusal(schema), Contains("accepts no value"));
        continue;
      }
      Matcher m(schema);
      for (int n = 0; n <= 7; ++n) {
        std::string text = "[";
        for (int i = 0; i < n; ++i) text += (i ? "," : "") + std::string(i == 0 ? "0" : i == 1 ? "1" : "9");
        text += "]";
        INFO(schema.dump() << " " << text);
        CHECK(m(text) == (n >= lo && (hi < 0 || n <= hi)));
      }
    }
}

TEST_CASE("JSON Schema: $defs with recursive $ref become recursive rules", "[constrain]") {
  const Json list = Json::parse(R"({"$defs": {"node": {"type": "object",
      "properties": {"value": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
      "required": ["value", "next"], "additionalProperties": false}}, "$ref": "#/$defs/node"})");
  Matcher m(list);
  CHECK(m(R"({"value":1,"next":null})"));
  CHECK(m(R"({"value":1,"next":{"value":2,"next":{"value":3,"next":null}}})"));
  CHECK_FALSE(m(R"({"value":1,"next":{"value":2}})"));
  CHECK_FALSE(m(R"({"value":1,"next":{"value":"2","next":null}})"));
  const Json tree = Json::parse(R"({"type": "object", "properties": {"name": {"type": "string"},
      "children": {"type": "array", "items": {"$ref": "#"}}}, "required": ["name"], "additionalProperties": false})");
  Matcher t(tree);
  CHECK(t(R"({"name":"a","children":[{"name":"b"},{"name":"c","children":[{"name":"d","children":[]}]}]})"));
  CHECK_FALSE(t(R"({"name":"a","children":[{"name":"b","x":1}]})"));
  // Pointers with ~0, ~1 and percent-encoding; definitions as in draft-07.
  Matcher escapes(Json::parse(R"({"definitions": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}, "e f": {"type": "null"}},
      "properties": {"x": {"$ref": "#/definitions/a~1b"}, "y": {"$ref": "#/definitions/c~0d"}, "z": {"$ref": "#/definitions/e%20f"}}})"));
  CHECK(escapes(R"({"x":1,"y":"s","z":null})"));
  CHECK_FALSE(escapes(R"({"x":"1"})"));
  CHECK_FALSE(escapes(R"({"y":1})"));
  // In 2020-12 $ref applies along with its siblings; in draft-07 it replaces them.
  CHECK_FALSE(Matcher(Json::parse(R"({"$defs": {"i": {"type": "integer"}}, "$ref": "#/$defs/i", "maximum": 3})"))("5"));
  CHECK(Matcher(Json::parse(R"({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"i": {"type": "integer"}}, "$ref": "#/definitions/i", "maximum": 3})"))("5"));
  // References the compiler does not follow are refused by name.
  CHECK_THAT(refusal(Json::parse(R"({"$ref": "http://example.com/s.json"})")), Contains("\"$ref\" \"http://example.com/s.json\""));
  CHECK_THAT(refusal(Json::parse(R"({"$ref": "#foo"})")), Contains("plain-name"));
  CHECK_THAT(refusal(Json::parse(R"({"$ref": "#/$defs/missing"})")), Contains("names nothing"));
}

namespace {

bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool valid_date(int y, int m, int d) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  return d <= days[m - 1] + (m == 2 && leap_year(y) ? 1 : 0);
}

std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

}  // namespace

TEST_CASE("JSON Schema: formats date, time, date-time, uuid and ipv4", "[constrain]") {
  Matcher date(Json::parse(R"({"format": "date"})"));
  for (int year : {0, 4, 100, 1900, 1999, 2000, 2004, 2023, 2024, 2100, 2400, 9996, 9999}) {
    char y[8];
    std::snprintf(y, sizeof y, "%04d", year);
    for (int month = 0; month <= 13; ++month)
      for (int day = 0; day <= 32; ++day) {
        const std::string text = "\"" + std::string(y) + "-" + two(month) + "-" + two(day) + "\"";
        INFO(text);
        CHECK(date(text) == valid_date(year, month, day));
      }
  }
  CHECK(date("5"));  // format constrains strings only
  for (const char* bad : {R"("2023-1-01")", R"("20230101")", R"("2023-01-01T00:00:00Z")", R"(" 2023-01-01")", R"("+2023-01-01")"})
    CHECK_FALSE(date(bad));
  Matcher time(Json::parse(R"({"type": "string", "format": "time"})"));
  for (const char* good : {"08:30:06Z", "23:59:59.999999999+14:00", "00:00:00-00:00", "12:00:00.5z", "08:30:06+05:30"})
    CHECK(time(std::string("\"") + good + "\""));
  for (const char* bad : {"24:00:00Z", "08:60:00Z", "08:30:60Z", "08:30:06", "08:30:06.Z", "08:30:06+24:00", "08:30:06+05:60",
                          "8:30:06Z", "08:30:06.1234567890Z", "08:30:06 Z"})
    CHECK_FALSE(time(std::string("\"") + bad + "\""));
  Matcher date_time(Json::parse(R"({"type": "string", "format": "date-time"})"));
  CHECK(date_time(R"("2024-02-29T23:59:59.123+01:00")"));
  CHECK(date_time(R"("1963-06-19t08:30:06z")"));
  CHECK_FALSE(date_time(R"("2023-02-29T00:00:00Z")"));
  CHECK_FALSE(date_time(R"("2023-01-01 00:00:00Z")"));
  Matcher uuid(Json::parse(R"({"type": "string", "format": "uuid"})"));
  CHECK(uuid(R"("123e4567-e89b-12d3-a456-426614174000")"));
  CHECK(uuid(R"("123E4567-E89B-12D3-A456-42661417400F")"));
  CHECK_FALSE(uuid(R"("123e4567e89b12d3a456426614174000")"));
  CHECK_FALSE(uuid(R"("123e4567-e89b-12d3-a456-42661417400g")"));
  CHECK_FALSE(uuid(R"("{123e4567-e89b-12d3-a456-426614174000}")"));
  Matcher ipv4(Json::parse(R"({"type": "string", "format": "ipv4"})"));
  for (int octet = 0; octet <= 300; ++octet) {
    CHECK(ipv4("\"10.0." + std::to_string(octet) + ".1\"") == (octet <= 255));
  }
  CHECK_FALSE(ipv4(R"("10.0.01.1")"));
  CHECK_FALSE(ipv4(R"("10.0.1")"));
  // Lengths that every spelling of the format meets are fine; others are refused.
  CHECK(refusal(Json::parse(R"({"format": "date", "minLength": 10, "maxLength": 12})")) == "");
  CHECK_THAT(refusal(Json::parse(R"({"type": "string", "format": "date", "maxLength": 5})")), Contains("accepts no value"));
  CHECK_THAT(refusal(Json::parse(R"({"type": "string", "format": "time", "maxLength": 12})")), Contains("beside \"format\""));
  CHECK_THAT(refusal(Json::parse(R"({"type": "string", "format": "email"})")), Contains("\"format\": \"email\""));
}

TEST_CASE("JSON Schema: strings count code points; escapes and control characters", "[constrain]") {
  Matcher m(Json::parse(R"({"type": "string", "minLength": 2, "maxLength": 3})"));
  CHECK(m(R"("ab")"));
  CHECK(m(R"("abc")"));
  CHECK(m(R"("éé")"));
  CHECK(m(R"("\u00e9\n")"));
  CHECK(m(R"("a\ud83d\ude00")"));  // a surrogate pair is one code point
  CHECK(m("\"a\xF0\x9F\x98\x80\""));
  CHECK(m(R"("\"\\/")"));
  CHECK(m(R"("\/\b\f")"));
  CHECK_FALSE(m(R"("a")"));
  CHECK_FALSE(m(R"("\ud83d\ude00")"));
  CHECK_FALSE(m(R"("abcd")"));
  CHECK_FALSE(m(R"("a\ud83d")"));          // a lone surrogate
  CHECK_FALSE(m(R"("\ude00ab")"));
  CHECK_FALSE(m("\"a\tb\""));              // a raw control character
  CHECK_FALSE(m(R"("a\x")"));
  CHECK_FALSE(m(R"("a\u00")"));
  Matcher any(Json::parse(R"({"type": "string"})"));
  CHECK(any(R"("")"));
  CHECK(any(R"("\u0000\u001F\uFFFF")"));
  CHECK_FALSE(any(R"("a)"));
}

TEST_CASE("JSON Schema: patterns match as ECMA-262 search does (std::regex as the reference)", "[constrain]") {
  // Every string of up to 4 characters over the alphabet, in a JSON string, against
  // std::regex_search with the ECMAScript grammar (unanchored, as JSON Schema's pattern is).
  struct Case {
    const char* pattern;
    const char* alphabet;
  };
  const Case c = GENERATE(
      Case{"a", "ab"}, Case{"^a", "ab"}, Case{"a$", "ab"}, Case{"^a$", "ab"}, Case{"^ab|ba$", "ab"}, Case{"^(ab)*$", "ab"},
      Case{"^(a|b)+$", "abc"}, Case{"^[ab]{2,3}$", "abc"}, Case{"^a{2}$", "ab"}, Case{"^a{2,}b", "ab"}, Case{"^.$", "a\n\r"},
      Case{"^\\d+$", "a1"}, Case{"^\\D\\d$", "a1"}, Case{"^\\w*$", "a_-1"}, Case{"\\W", "a-1"}, Case{"^\\s\\S$", " \ta\n"},
      Case{"^[^a]*$", "ab\""}, Case{"^(?:ab|a)*b$", "ab"}, Case{"^(a?)*$", "ab"}, Case{"^(a*)*b$", "ab"}, Case{"^(a|a)*$", "ab"},
      Case{"^[a-c-]+$", "ad-"}, Case{"^\\.\\*$", ".*a"}, Case{"^[.]$", ".a"}, Case{"^a|b", "abc"},
      Case{"^$", "a"}, Case{"", "a"}, Case{"^(|a)b$", "ab"}, Case{"x*", "xy"}, Case{"^[\\]\\\\]$", "]\\a"},
      Case{"^\"\\\\$", "\"\\a"}, Case{"^\\n\\t$", "\n\ta"}, Case{"^[\\x41-\\x43]{2}$", "ABD"}, Case{"^\\u0041$", "AB"},
      Case{"^a{0,2}b{1,}$", "ab"}, Case{"^(a|bc)?c{2}$", "abc"}, Case{"^[\\b]$", "\ba"}, Case{"^(a+)+$", "ab"},
      Case{"^a{,2}", "a"}, Case{"^\\0$", ""}, Case{"[}{]", "{}a"},
      Case{"^\\/$", "/a"}, Case{"^[^\\d\\s]$", "1 a"}, Case{"(a)(b)?", "ab"});
  INFO("pattern " << c.pattern);
  if (std::string(c.pattern) == "^a{,2}") {
    CHECK_THAT(refusal(Json{{"pattern", c.pattern}}), Contains("{,n}"));
    return;
  }
  Json schema = {{"pattern", c.pattern}};
  Matcher m(schema);
  const std::regex re(c.pattern, std::regex::ECMAScript);
  std::string alphabet = c.alphabet;
  if (alphabet.empty()) alphabet = std::string(1, '\0');  // "" stands for the NUL character
  for (const std::string& s : glrnn::test::all_strings(alphabet, 4)) {
    const std::string text = Json(s).dump();
    INFO(text);
    CHECK(m(text) == std::regex_search(s, re));
  }
  CHECK(m("1"));  // a pattern constrains strings only
}

TEST_CASE("JSON Schema: patterns over code points, and what they refuse by name", "[constrain]") {
  Matcher accents(Json::parse(R"({"type": "string", "pattern": "^[à-ÿ]+ é.$"})"));
  CHECK(accents(R"("àÿ é😀")"));
  CHECK(accents(R"("ç éa")"));
  CHECK_FALSE(accents(R"("a éa")"));
  CHECK_FALSE(accents(R"("à e")"));
  // Beyond std::regex (named groups, \cX), checked against node's RegExp by hand.
  Matcher named(Json::parse(R"({"pattern": "(?<n>ab)c"})"));
  CHECK(named(R"("xabcx")"));
  CHECK_FALSE(named(R"("acb")"));
  Matcher control(Json::parse(R"({"pattern": "^\\cJ\\ca$"})"));
  CHECK(control(R"("\n\u0001")"));
  CHECK_FALSE(control(R"("J\u0001")"));
  Matcher astral(Json::parse(R"({"type": "string", "pattern": "^\\ud83d\\ude00{2}$"})"));
  CHECK(astral("\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\""));
  CHECK_FALSE(astral("\"\xF0\x9F\x98\x80\""));
  // An anchored repetition of one set takes minLength/maxLength; other patterns only lengths
  // they already imply.
  Matcher bounded(Json::parse(R"({"type": "string", "pattern": "^[a-z]+$", "maxLength": 3})"));
  CHECK(bounded(R"("abc")"));
  CHECK_FALSE(bounded(R"("abcd")"));
  CHECK_FALSE(bounded(R"("")"));
  CHECK(refusal(Json::parse(R"({"pattern": "^[A-Z]{2}-\\d{3}$", "minLength": 6, "maxLength": 6})")) == "");
  CHECK_THAT(refusal(Json::parse(R"({"pattern": "^a+b$", "maxLength": 4})")), Contains("beside this \"pattern\""));
  const std::pair<const char*, const char*> refused[] = {
      {"(a)\\1", "backreference"},   {"a(?=b)", "lookahead"},        {"a(?!b)", "lookahead"},
      {"(?<=a)b", "lookbehind"},     {"(?<!a)b", "lookbehind"},      {"a*?", "lazy quantifier"},
      {"a+?", "lazy quantifier"},    {"a{2}?", "lazy quantifier"},   {"a++", "possessive quantifier"},
      {"\\p{L}", "unicode property"}, {"\\bword", "word boundary"},   {"a^b", "'^'"},
      {"a$b", "'$'"},                {"\\k<n>", "named backreference"}, {"(?i)a", "group syntax"},
      {"\\u{1F600}", "\\u{...}"},    {"\\q", "escape \\q"},         {"a{20000}", "repetition count"},
      {"(a", "unterminated group"},  {"a)", "unmatched ')'"},       {"*a", "repeats nothing"},
      {"[a", "unterminated character class"}, {"[z-a]", "out of order"}, {"[\\d-z]", "class escape"},
      {"\\1", "backreference"},      {"[[:alpha:]]", "POSIX"},
  };
  for (const auto& [pattern, what] : refused) {
    INFO(pattern);
    CHECK_THAT(refusal(Json{{"pattern", pattern}}), Contains("pattern") && Contains(what));
  }
}

namespace {

/// The spelling of an integer number of hundredths, shortest or with one more zero.
std::string hundredths(long v, bool trailing_zero) {
  const long mag = v < 0 ? -v : v;
  std::string out = (v < 0 ? "-" : "") + std::to_string(mag / 100);
  std::string fraction = two(static_cast<int>(mag % 100));
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  if (trailing_zero) fraction += "0";
  if (!fraction.empty()) out += "." + fraction;
  return out;
}

}  // namespace

TEST_CASE("JSON Schema: integer bounds match direct comparisons on every integer in [-1200, 1200]", "[constrain]") {
  // Bounds at and around powers of ten, and some whose ranges have a one-digit middle (15..35).
  const long bounds[] = {-1000, -101, -100, -99, -35, -10, -9, -1, 0, 1, 9, 10, 11, 15, 35, 99, 100, 101, 250, 999, 1000, 1050};
  const auto check = [](const Json& schema, long lo, bool lo_set, long hi, bool hi_set) {
    INFO(schema.dump());
    if (lo_set && hi_set && lo > hi) {
      CHECK_THAT(refusal(schema), Contains("accepts no value"));
      return;
    }
    Matcher m(schema);
    for (long v = -1200; v <= 1200; ++v) {
      const bool expected = (!lo_set || v >= lo) && (!hi_set || v <= hi);
      if (m(std::to_string(v)) != expected) {
        INFO(v);
        CHECK(false);
        return;
      }
    }
    CHECK_FALSE(m("-0"));
    CHECK_FALSE(m("01"));
    CHECK_FALSE(m("+1"));
    CHECK_FALSE(m("1.0"));
  };
  for (long b : bounds) {
    check({{"type", "integer"}, {"minimum", b}}, b, true, 0, false);
    check({{"type", "integer"}, {"exclusiveMinimum", b}}, b + 1, true, 0, false);
    check({{"type", "integer"}, {"maximum", b}}, 0, false, b, true);
    check({{"type", "integer"}, {"exclusiveMaximum", b}}, 0, false, b - 1, true);
  }
  for (std::size_t i = 0; i < std::size(bounds); ++i)
    for (std::size_t j = i; j < std::size(bounds); ++j) {
      check({{"type", "integer"}, {"minimum", bounds[i]}, {"maximum", bounds[j]}}, bounds[i], true, bounds[j], true);
      check({{"type", "integer"}, {"exclusiveMinimum", bounds[i]}, {"maximum", bounds[j]}}, bounds[i] + 1, true, bounds[j], true);
    }
  // Non-integral bounds round inwards; the tighter of two bounds wins.
  check(Json::parse(R"({"type": "integer", "minimum": -2.5, "exclusiveMaximum": 7.5})"), -2, true, 7, true);
  check(Json::parse(R"({"type": "integer", "minimum": 3, "exclusiveMinimum": 3, "maximum": 10, "exclusiveMaximum": 12})"), 4, true, 10, true);
  check(Json::parse(R"({"type": "integer", "minimum": -1e30, "maximum": 1e30})"), 0, false, 0, false);
  // Digits: the unbounded side reaches kJsonMaxIntegerDigits digits.
  Matcher big(Json::parse(R"({"type": "integer", "minimum": 5})"));
  CHECK(big(std::string(glrnn::kJsonMaxIntegerDigits, '9')));
  CHECK_FALSE(big(std::string(glrnn::kJsonMaxIntegerDigits + 1, '9')));
  CHECK_THAT(refusal(Json::parse(R"({"type": "integer", "maximum": 1e19})")), Contains("10^18"));
}

TEST_CASE("JSON Schema: number bounds match exact decimal comparisons", "[constrain]") {
  // Bounds and values in hundredths; every value from -4 to 4 in steps of 0.05, spelled shortest
  // and with a trailing zero.
  const long bounds[] = {-250, -100, -75, -5, 0, 10, 25, 100, 150, 305};
  const auto check = [](const Json& schema, long lo, int lo_kind, long hi, int hi_kind) {  // kind 0 none, 1 incl, 2 excl
    INFO(schema.dump());
    if (lo_kind && hi_kind && (lo > hi || (lo == hi && (lo_kind == 2 || hi_kind == 2)))) {
      CHECK_THAT(refusal(schema), Contains("accepts no value"));
      return;
    }
    Matcher m(schema);
    for (long v = -400; v <= 400; v += 5)
      for (bool zero : {false, true}) {
        const bool expected = (lo_kind == 0 || (lo_kind == 1 ? v >= lo : v > lo)) && (hi_kind == 0 || (hi_kind == 1 ? v <= hi : v < hi));
        const std::string text = hundredths(v, zero);
        if (m(text) != expected) {
          INFO(text);
          CHECK(false);
          return;
        }
      }
    CHECK_FALSE(m("1e0"));
  };
  const auto bound = [](long h) { return h % 100 == 0 ? Json(h / 100) : Json(static_cast<double>(h) / 100); };
  for (long b : bounds) {
    check({{"type", "number"}, {"minimum", bound(b)}}, b, 1, 0, 0);
    check({{"type", "number"}, {"exclusiveMinimum", bound(b)}}, b, 2, 0, 0);
    check({{"type", "number"}, {"maximum", bound(b)}}, 0, 0, b, 1);
    check({{"type", "number"}, {"exclusiveMaximum", bound(b)}}, 0, 0, b, 2);
  }
  for (long lo : bounds)
    for (long hi : bounds) {
      if (lo > hi) continue;
      check({{"minimum", bound(lo)}, {"exclusiveMaximum", bound(hi)}, {"type", "number"}}, lo, 1, hi, 2);
      check({{"exclusiveMinimum", bound(lo)}, {"maximum", bound(hi)}, {"type", "number"}}, lo, 2, hi, 1);
    }
}

TEST_CASE("JSON Schema: unsupported keywords are refused by name", "[constrain]") {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"uniqueItems": true})", "\"uniqueItems\" at the root is not supported"},
      {R"({"properties": {"tags": {"uniqueItems": true}}})", "\"uniqueItems\" at /properties/tags is not supported"},
      {R"({"not": {}})", "\"not\""},
      {R"({"contains": {}})", "\"contains\""},
      {R"({"if": {}, "then": {}})", "\"if\""},
      {R"({"then": {}})", "\"then\""},
      {R"({"patternProperties": {"a": {}}})", "\"patternProperties\""},
      {R"({"propertyNames": {}})", "\"propertyNames\""},
      {R"({"minProperties": 1})", "\"minProperties\""},
      {R"({"maxProperties": 1})", "\"maxProperties\""},
      {R"({"multipleOf": 2})", "\"multipleOf\""},
      {R"({"dependencies": {}})", "\"dependencies\""},
      {R"({"dependentRequired": {}})", "\"dependentRequired\""},
      {R"({"unevaluatedProperties": false})", "\"unevaluatedProperties\""},
      {R"({"$anchor": "a"})", "\"$anchor\""},
      {R"({"$dynamicRef": "#a"})", "\"$dynamicRef\""},
      {R"({"items": {"$id": "x"}})", "\"$id\" below the root at /items"},
      {R"({"contentMediaType": "application/json"})", "\"contentMediaType\""},
      {R"({"x-unknown": 1})", "\"x-unknown\""},
      {R"({"format": "hostname"})", "\"format\": \"hostname\""},
      {R"({"allOf": [{"pattern": "a"}, {"pattern": "b"}]})", "beside another \"pattern\""},
      {R"({"$schema": "http://json-schema.org/draft-03/schema#"})", "draft-03"},
      {R"({"maxItems": 10001})", "\"maxItems\" at the root above 10000"},
      {R"({"type": "strin"})", "unknown type"},
  };
  for (const auto& [schema, message] : cases) {
    INFO(schema);
    CHECK_THAT(refusal(Json::parse(schema)), Contains(message));
  }
  // Annotations are ignored on purpose.
  Matcher m(Json::parse(R"({"title": "t", "description": "d", "default": 1, "examples": [1], "$comment": "c", "readOnly": true,
      "writeOnly": false, "deprecated": true, "$id": "https://example.com/s", "type": "integer"})"));
  CHECK(m("1"));
  CHECK_FALSE(m("\"1\""));
}

TEST_CASE("JSON Schema: hostile schemas are refused or bounded", "[constrain]") {
  const auto elapsed_ms = [](auto&& f) {
    const auto start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  // 10000 levels of nesting: refused before anything recurses.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += R"({"items":)";
  deep += "{}" + std::string(10000, '}');
  const Json deep_schema = Json::parse(deep);
  CHECK(elapsed_ms([&] { CHECK_THAT(refusal(deep_schema), Contains("nested deeper")); }) < 1000);
  // Enums and grammars past their limits.
  Json big_enum = Json::array();
  for (std::size_t i = 0; i <= glrnn::kJsonSchemaMaxEnumValues; ++i) big_enum.push_back(i);
  CHECK_THAT(refusal({{"enum", big_enum}}), Contains("more than 10000 values"));
  Json long_enum = Json::array();
  for (int i = 0; i < 10000; ++i) long_enum.push_back(std::string(200, 'a') + std::to_string(i));
  CHECK_THAT(refusal({{"enum", long_enum}}), Contains("exceed"));
  // $ref cycles that consume nothing.
  for (const char* schema : {R"({"$ref": "#"})", R"({"anyOf": [{"$ref": "#"}, {"type": "null"}]})", R"({"allOf": [{"$ref": "#"}]})",
                             R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})",
                             R"({"$defs": {"a": {"oneOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"})"}) {
    INFO(schema);
    // (oneOf is refused before the cycle shows: its branches cannot be told apart.)
    CHECK_THAT(refusal(Json::parse(schema)), Contains("refers to itself") || Contains("cycle") || Contains("\"oneOf\""));
  }
  // anyOf inside allOf multiplies out: bounded by the grammar's size.
  Json product = Json::object();
  for (int i = 0; i < 12; ++i) {
    Json branches = Json::array();
    for (int b = 0; b < 4; ++b) branches.push_back({{"properties", {{"p" + std::to_string(i), {{"const", b}}}}}});
    product["allOf"].push_back({{"anyOf", branches}});
  }
  CHECK(elapsed_ms([&] { CHECK_THAT(refusal(product), Contains("exceed") || Contains("too many")); }) < 20000);
  // Patterns that backtracking engines take exponential time on compile and match in bounded time.
  for (const char* pattern : {"^(a|a)*$", "^(a*)*$", "^((a+)+)+b$", "(x+x+)+y", "^(a|aa)+$", "^(.*a){12}$"}) {
    INFO(pattern);
    const double ms = elapsed_ms([&] {
      Matcher m(Json{{"type", "string"}, {"pattern", pattern}});
      m("\"" + std::string(300, 'a') + "\"");
      m("\"" + std::string(300, 'x') + "\"");
    });
    CHECK(ms < 5000);
  }
  // Many optional properties: the grammar stays linear in their number.
  Json many = {{"type", "object"}};
  for (int i = 0; i < 2000; ++i) many["properties"]["p" + std::to_string(i)] = {{"type", "integer"}};
  CHECK(json_schema_to_grammar(many).size() < glrnn::kJsonSchemaMaxGrammarBytes);
}

TEST_CASE("JSON Schema: boolean schemas and json_object_grammar", "[constrain]") {
  Matcher any(Json(true));
  for (const char* text : {"null", "true", "0", "-1.5e3", R"("x")", "[]", R"({"a":[1,{"b":null}]})"}) CHECK(any(text));
  CHECK_FALSE(any("nul"));
  CHECK_FALSE(any("01"));
  CHECK_FALSE(any("[1,]"));
  CHECK_THAT(refusal(Json(false)), Contains("accepts no value"));
  CHECK_THAT(refusal(Json::parse(R"({"type": "object", "properties": {"a": false}, "required": ["a"]})")), Contains("accepts no value"));
  Matcher no_a(Json::parse(R"({"type": "object", "properties": {"a": false}})"));
  CHECK(no_a(R"({"b":1})"));
  CHECK_FALSE(no_a(R"({"a":1})"));
  const Grammar object = Grammar::parse(glrnn::json_object_grammar());
  CHECK(grammar_accepts(object, "{}"));
  CHECK(grammar_accepts(object, R"({"a": [1, 2.5, "x", {"b": null}], "c": true})"));
  CHECK_FALSE(grammar_accepts(object, "[]"));
  CHECK_FALSE(grammar_accepts(object, R"("{}")"));
  CHECK_FALSE(grammar_accepts(object, R"({"a":})"));
}

TEST_CASE("JSON Schema: max_whitespace bounds the whitespace between tokens, 0 gives compact JSON", "[constrain]") {
  const Json schema = Json::parse(R"({"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}},"required":["a"]})");
  const Grammar compact = Grammar::parse(json_schema_to_grammar(schema, 0));
  CHECK(grammar_accepts(compact, R"({"a":[1,2]})"));
  CHECK_FALSE(grammar_accepts(compact, R"({"a": [1,2]})"));
  CHECK_FALSE(grammar_accepts(compact, "{\"a\":[1,\n2]}"));
  const Grammar two = Grammar::parse(json_schema_to_grammar(schema, 2));
  CHECK(grammar_accepts(two, "{ \"a\" :\n [1 , 2]}"));
  CHECK_FALSE(grammar_accepts(two, "{\"a\":   [1,2]}"));
  CHECK_THROWS_WITH(json_schema_to_grammar(schema, -1), Contains("max_whitespace"));
}
