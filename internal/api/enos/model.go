package enos

import (
	"encoding/json"
	"strings"
)

// Wire types of connect-service v2.1 (spec §3.3).

// envelope is every API answer; Pagination only on searches.
type envelope struct {
	Code       int         `json:"code"`
	Msg        string      `json:"msg"`
	RequestID  string      `json:"requestId"`
	Data       any         `json:"data"`
	Pagination *pagination `json:"pagination,omitempty"`
}

type pagination struct {
	PageNo    int   `json:"pageNo"`
	PageSize  int   `json:"pageSize"`
	TotalSize int64 `json:"totalSize"`
	SortedBy  any   `json:"sortedBy"`
}

// tokenEnvelope is the token service's answer.
type tokenEnvelope struct {
	Status   int        `json:"status"`
	Msg      string     `json:"msg"`
	Business string     `json:"business"`
	Data     *tokenData `json:"data"`
}

type tokenData struct {
	AccessToken string `json:"accessToken"`
	Expire      int64  `json:"expire"`
}

// StringI18n is EnOS's localized name.
type StringI18n struct {
	DefaultValue string            `json:"defaultValue"`
	I18nValue    map[string]string `json:"i18nValue,omitempty"`
}

// translations are the i18nValue entries that say something: EnOS forms
// send every locale, those not filled in as "", which mean "no
// translation" rather than an empty name.
func (n StringI18n) translations() map[string]string {
	var out map[string]string
	for locale, v := range n.I18nValue {
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[locale] = v
	}
	return out
}

type firmwareMetadata struct {
	Name               StringI18n `json:"name"`
	Version            string     `json:"version"`
	SignMethod         string     `json:"signMethod"`
	Sign               string     `json:"sign"`
	Desc               string     `json:"desc"`
	EnableVerification *bool      `json:"enableVerification"`
}

type firmwareInfo struct {
	OrgID              string     `json:"orgId"`
	FirmwareID         string     `json:"firmwareId"`
	ProductKey         string     `json:"productKey"`
	Name               StringI18n `json:"name"`
	Version            string     `json:"version"`
	Desc               string     `json:"desc"`
	SignMethod         string     `json:"signMethod"`
	Sign               string     `json:"sign"`
	FileURL            string     `json:"fileUrl"`
	FileSize           int64      `json:"fileSize"`
	EnableVerification bool       `json:"enableVerification"`
	IsVerified         bool       `json:"isVerified"`
	CreateTime         int64      `json:"createTime"`
}

type searchRequest struct {
	Expression string `json:"expression"`
	Pagination *struct {
		PageNo   int             `json:"pageNo"`
		PageSize int             `json:"pageSize"`
		Sorters  json.RawMessage `json:"sorters"`
	} `json:"pagination"`
}

type upgradeScope struct {
	Type           string            `json:"type"`
	VersionNumbers []string          `json:"versionNumbers,omitempty"`
	DeviceKeys     []string          `json:"deviceKeys,omitempty"`
	Attributes     map[string]any    `json:"attributes,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	AssetTrees     json.RawMessage   `json:"assetTrees,omitempty"`
	AssetIDs       []string          `json:"assetIds,omitempty"`
	DeviceGroupIDs []string          `json:"deviceGroupIds,omitempty"`
	ProductKey     string            `json:"productKey,omitempty"`
}

type retryPolicy struct {
	EnableRetry   bool            `json:"enableRetry"`
	RetryInterval json.RawMessage `json:"retryInterval,omitempty"` // the sample sends "10"
	RetryCount    int             `json:"retryCount"`
}

type schedulePolicy struct {
	StartTimestamp          int64 `json:"startTimestamp"`
	EndTimestamp            int64 `json:"endTimestamp"`
	IsRepeatDaily           bool  `json:"isRepeatDaily"`
	TimezoneOffsetInMinutes int   `json:"timezoneOffsetInMinutes"`
}

type jobRequest struct {
	Name                 *StringI18n     `json:"name,omitempty"`
	Type                 string          `json:"type"`
	UpgradeScope         *upgradeScope   `json:"upgradeScope"`
	UpgradePolicy        string          `json:"upgradePolicy,omitempty"`
	EnableUpgradeRequest *bool           `json:"enableUpgradeRequest,omitempty"`
	UpgradeTimeout       *int64          `json:"upgradeTimeout,omitempty"`
	RetryPolicy          *retryPolicy    `json:"retryPolicy,omitempty"`
	SchedulePolicy       *schedulePolicy `json:"schedulePolicy,omitempty"`
	MaximumConcurrency   *int            `json:"maximumConcurrency,omitempty"`
}

type jobInfo struct {
	OrgID                string          `json:"orgId"`
	ProductKey           string          `json:"productKey"`
	JobID                string          `json:"jobId"`
	Name                 StringI18n      `json:"name"`
	FirmwareID           string          `json:"firmwareId"`
	FirmwareVersion      string          `json:"firmwareVersion"`
	FirmwareName         StringI18n      `json:"firmwareName"`
	Type                 string          `json:"type"`
	EnableUpgradeRequest bool            `json:"enableUpgradeRequest"`
	UpgradePolicy        string          `json:"upgradePolicy"`
	UpgradeScope         upgradeScope    `json:"upgradeScope"`
	UpgradeTimeout       int             `json:"upgradeTimeout"`
	RetryPolicy          *retryPolicy    `json:"retryPolicy"`
	SchedulePolicy       *schedulePolicy `json:"schedulePolicy"`
	MaximumConcurrency   int             `json:"maximumConcurrency"`
	Status               string          `json:"status"`
	CreateTime           int64           `json:"createTime"`
}

type taskInfo struct {
	TaskID      string `json:"taskId"`
	OrgID       string `json:"orgId"`
	AssetID     string `json:"assetId"`
	ProductKey  string `json:"productKey"`
	DeviceKey   string `json:"deviceKey"`
	JobID       string `json:"jobId"`
	FromVersion string `json:"fromVersion"`
	ToVersion   string `json:"toVersion"`
	Desc        string `json:"desc"`
	Progress    int    `json:"progress"`
	Status      string `json:"status"`
	UpdateTime  int64  `json:"updateTime"`
}

type deviceKeysRequest struct {
	DeviceKeys []string `json:"deviceKeys"`
}

// lenientJSON turns the Python-literal metadata of the official sample
// (single-quoted strings, True/False/None) into JSON; JSON passes unchanged.
func lenientJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			b.WriteString(s[i:min(j+1, len(s))])
			i = j
		case c == '\'':
			b.WriteByte('"')
			j := i + 1
			for ; j < len(s) && s[j] != '\''; j++ {
				switch {
				case s[j] == '\\' && j+1 < len(s) && s[j+1] == '\'':
					b.WriteByte('\'')
					j++
				case s[j] == '"':
					b.WriteString(`\"`)
				default:
					b.WriteByte(s[j])
				}
			}
			b.WriteByte('"')
			i = j
		case strings.HasPrefix(s[i:], "True"):
			b.WriteString("true")
			i += 3
		case strings.HasPrefix(s[i:], "False"):
			b.WriteString("false")
			i += 4
		case strings.HasPrefix(s[i:], "None"):
			b.WriteString("null")
			i += 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
