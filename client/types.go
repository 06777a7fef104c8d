package client

import "github.com/updraft-ota/updraft/apiv1"

// The API's JSON types are defined once, in package apiv1, which the server
// encodes and decodes too; these aliases keep them in this package's API.
type (
	List[T any] = apiv1.List[T]
	Tag         = apiv1.Tag

	ProductCreate = apiv1.ProductCreate
	Product       = apiv1.Product
	ModuleCreate  = apiv1.ModuleCreate
	ModuleUpdate  = apiv1.ModuleUpdate
	Module        = apiv1.Module

	DeviceCreate = apiv1.DeviceCreate
	DeviceUpdate = apiv1.DeviceUpdate
	Device       = apiv1.Device

	PackageMetadata = apiv1.PackageMetadata
	Package         = apiv1.Package
	PackageUpdate   = apiv1.PackageUpdate
	Object          = apiv1.Object

	JobTarget     = apiv1.JobTarget
	JobWindow     = apiv1.JobWindow
	JobSchedule   = apiv1.JobSchedule
	JobRetry      = apiv1.JobRetry
	JobAbort      = apiv1.JobAbort
	JobCreate     = apiv1.JobCreate
	JobUpdate     = apiv1.JobUpdate
	Job           = apiv1.Job
	Task          = apiv1.Task
	TaskPage      = apiv1.TaskPage
	TaskResult    = apiv1.TaskResult
	TaskResults   = apiv1.TaskResults
	CanceledCount = apiv1.CanceledCount

	Quota        = apiv1.Quota
	TenantCreate = apiv1.TenantCreate
	Tenant       = apiv1.Tenant
	AccessKey    = apiv1.AccessKey
	AuditEntry   = apiv1.AuditEntry
)
