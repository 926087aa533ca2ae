package idl_test

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
)

// enumSpec is one thrift enum as protocol.md lists it: its values as written there ("NAME n,
// NAME n, ..."), and our constants in the same order.
type enumSpec struct {
	name   string
	spec   string
	values []fmt.Stringer
}

// The enum tables of protocol.md, copied as written: §2.1 (negotiation_status), §2.2
// (app_status, pattern_match_type, node_status, app_env_operation) and §2.3 (filter_type,
// cas_check_type, mutate_operation, update_type).
var enumSpecs = []enumSpec{
	{"negotiation_status", `INVALID 0, SASL_LIST_MECHANISMS 1,
		SASL_LIST_MECHANISMS_RESP 2, SASL_SELECT_MECHANISMS 3, SASL_SELECT_MECHANISMS_RESP 4,
		SASL_INITIATE 5, SASL_CHALLENGE 6, SASL_CHALLENGE_RESP 7, SASL_SUCC 8, SASL_AUTH_DISABLE 9,
		SASL_AUTH_FAIL 10`, []fmt.Stringer{
		idl.NegotiationInvalid, idl.NegotiationSASLListMechanisms, idl.NegotiationSASLListMechanismsResp,
		idl.NegotiationSASLSelectMechanisms, idl.NegotiationSASLSelectMechanismsResp,
		idl.NegotiationSASLInitiate, idl.NegotiationSASLChallenge, idl.NegotiationSASLChallengeResp,
		idl.NegotiationSASLSucc, idl.NegotiationSASLAuthDisable, idl.NegotiationSASLAuthFail,
	}},
	{"app_status", `AS_INVALID 0, AS_AVAILABLE 1, AS_CREATING 2, AS_CREATE_FAILED 3, AS_DROPPING 4,
		AS_DROP_FAILED 5, AS_DROPPED 6, AS_RECALLING 7`, []fmt.Stringer{
		idl.AppStatusInvalid, idl.AppStatusAvailable, idl.AppStatusCreating, idl.AppStatusCreateFailed,
		idl.AppStatusDropping, idl.AppStatusDropFailed, idl.AppStatusDropped, idl.AppStatusRecalling,
	}},
	{"pattern_match_type", `PMT_INVALID 0, PMT_MATCH_ALL 1, PMT_MATCH_EXACT 2, PMT_MATCH_ANYWHERE 3,
		PMT_MATCH_PREFIX 4, PMT_MATCH_POSTFIX 5, PMT_MATCH_REGEX 6`, []fmt.Stringer{
		idl.PatternMatchInvalid, idl.PatternMatchAll, idl.PatternMatchExact, idl.PatternMatchAnywhere,
		idl.PatternMatchPrefix, idl.PatternMatchPostfix, idl.PatternMatchRegex,
	}},
	{"node_status", `NS_INVALID 0, NS_ALIVE 1, NS_UNALIVE 2`, []fmt.Stringer{
		idl.NodeStatusInvalid, idl.NodeStatusAlive, idl.NodeStatusUnalive,
	}},
	{"app_env_operation", `APP_ENV_OP_INVALID 0, APP_ENV_OP_SET 1, APP_ENV_OP_DEL 2,
		APP_ENV_OP_CLEAR 3`, []fmt.Stringer{
		idl.AppEnvOpInvalid, idl.AppEnvOpSet, idl.AppEnvOpDel, idl.AppEnvOpClear,
	}},
	{"hotkey_type", `READ 0, WRITE 1`, []fmt.Stringer{idl.HotkeyRead, idl.HotkeyWrite}},
	{"detect_action", `START 0, STOP 1, QUERY 2`, []fmt.Stringer{idl.DetectStart, idl.DetectStop, idl.DetectQuery}},
	{"filter_type", `FT_NO_FILTER 0, FT_MATCH_ANYWHERE 1, FT_MATCH_PREFIX 2, FT_MATCH_POSTFIX 3`,
		[]fmt.Stringer{idl.FilterNone, idl.FilterMatchAnywhere, idl.FilterMatchPrefix, idl.FilterMatchPostfix}},
	{"cas_check_type", `CT_NO_CHECK 0, CT_VALUE_NOT_EXIST 1, CT_VALUE_NOT_EXIST_OR_EMPTY 2,
		CT_VALUE_EXIST 3, CT_VALUE_NOT_EMPTY 4, CT_VALUE_MATCH_ANYWHERE 5, CT_VALUE_MATCH_PREFIX 6,
		CT_VALUE_MATCH_POSTFIX 7, CT_VALUE_BYTES_LESS 8, CT_VALUE_BYTES_LESS_OR_EQUAL 9,
		CT_VALUE_BYTES_EQUAL 10, CT_VALUE_BYTES_GREATER_OR_EQUAL 11, CT_VALUE_BYTES_GREATER 12,
		CT_VALUE_INT_LESS 13, CT_VALUE_INT_LESS_OR_EQUAL 14, CT_VALUE_INT_EQUAL 15,
		CT_VALUE_INT_GREATER_OR_EQUAL 16, CT_VALUE_INT_GREATER 17`, []fmt.Stringer{
		idl.CheckNone, idl.CheckValueNotExist, idl.CheckValueNotExistOrEmpty, idl.CheckValueExist,
		idl.CheckValueNotEmpty, idl.CheckValueMatchAnywhere, idl.CheckValueMatchPrefix,
		idl.CheckValueMatchPostfix, idl.CheckValueBytesLess, idl.CheckValueBytesLessOrEqual,
		idl.CheckValueBytesEqual, idl.CheckValueBytesGreaterOrEqual, idl.CheckValueBytesGreater,
		idl.CheckValueIntLess, idl.CheckValueIntLessOrEqual, idl.CheckValueIntEqual,
		idl.CheckValueIntGreaterOrEqual, idl.CheckValueIntGreater,
	}},
	{"mutate_operation", `MO_PUT 0, MO_DELETE 1`, []fmt.Stringer{idl.MutatePut, idl.MutateDelete}},
	{"update_type", `UT_PUT 0, UT_INCR 1, UT_CHECK_AND_SET 2, UT_CHECK_AND_MUTATE_PUT 3,
		UT_CHECK_AND_MUTATE_REMOVE 4`, []fmt.Stringer{
		idl.UpdatePut, idl.UpdateIncr, idl.UpdateCheckAndSet, idl.UpdateCheckAndMutatePut,
		idl.UpdateCheckAndMutateRemove,
	}},
}

// parseEnumSpec splits "NAME n, NAME n, ..." into names and values.
func parseEnumSpec(t *testing.T, spec string) (names []string, values []int64) {
	t.Helper()
	for _, item := range strings.Split(spec, ",") {
		f := strings.Fields(item)
		if len(f) != 2 {
			t.Fatalf("spec item %q is not NAME VALUE", item)
		}
		v, err := strconv.ParseInt(f[1], 10, 32)
		if err != nil {
			t.Fatalf("spec item %q: %v", item, err)
		}
		names, values = append(names, f[0]), append(values, v)
	}
	return names, values
}

// Every thrift enum value and name is protocol.md's, and no type names a value the document
// does not list.
func TestEnumsMatchProtocol(t *testing.T) {
	for _, e := range enumSpecs {
		t.Run(e.name, func(t *testing.T) {
			names, values := parseEnumSpec(t, e.spec)
			if len(names) != len(e.values) {
				t.Fatalf("protocol.md lists %d values, the test %d constants", len(names), len(e.values))
			}
			for i, c := range e.values {
				if got := reflect.ValueOf(c).Int(); got != values[i] || c.String() != names[i] {
					t.Errorf("constant %d = %d %q, protocol.md: %d %q", i, got, c.String(), values[i], names[i])
				}
			}
			// The value after the last has no name.
			next := reflect.New(reflect.TypeOf(e.values[0])).Elem()
			next.SetInt(values[len(values)-1] + 1)
			s := next.Interface().(fmt.Stringer).String()
			if want := fmt.Sprintf("%s(%d)", next.Type().Name(), next.Int()); s != want {
				t.Errorf("value %d is named %q; protocol.md lists no such value", next.Int(), s)
			}
		})
	}
}
