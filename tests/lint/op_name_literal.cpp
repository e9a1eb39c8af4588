// A fixture for scripts/check-op-names.sh: the check must reject this file (ctest
// op_names_rejects_a_literal). Not compiled.
bool is_add(const ingot::Node& n) { return n.op_name() == "Add"; }
