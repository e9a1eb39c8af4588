// The verifier: structure, types and shapes, cycles, state variables. Each violation has its own code.
#pragma once

#include <string>
#include <vector>

#include "ir/model.h"
#include "base/status.h"

namespace ingot {

enum class VerifyCode {
  DuplicateName,        // two nodes share a name
  DanglingInput,        // an input refers to a node outside the model or a missing output
  Cycle,                // the graph is not acyclic
  Arity,                // wrong number of inputs for the op
  BadAttribute,         // missing, unknown or wrongly typed attribute
  TypeMismatch,         // stored output types differ from shape inference, or inference fails
  BadConstant,          // constant data missing size or type agreement with its declared type
  UnknownVariable,      // ReadValue/Assign names an undeclared variable
  VariableTypeMismatch, // ReadValue/Assign type or shape disagrees with the variable
  VariableNotAssigned,  // a variable read but never written
  VariableNotRead,      // a variable declared or written but never read
  VariableMultipleAssign,  // more than one Assign to one variable
  DuplicateVariable,    // two variables with one name
  NoResults,            // the model computes nothing
};
const char* verify_code_name(VerifyCode c);

struct VerifyDiagnostic {
  VerifyCode code;
  std::string node;     // the node concerned, empty for model-level problems
  std::string message;  // says what is wrong
};

std::vector<VerifyDiagnostic> verify_diagnostics(const Model& m);
// All diagnostics joined into one error, or ok.
Status verify(const Model& m);

}  // namespace ingot
