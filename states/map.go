package states

import "encoding/json"

func (d *decoder) mapFields(s *Map) fieldSet {
	fs := d.common(&s.CommonFields, "Next", "End", "InputPath", "OutputPath", "Assign", "Output")
	// ItemProcessor and its legacy name Iterator: the model holds one, so
	// having both can only be reported while decoding.
	processor := func(legacy bool) handler {
		return func(p string, r json.RawMessage) {
			if s.ItemProcessor != nil {
				d.addf(p, "cannot be used with %s", map[bool]string{true: "ItemProcessor", false: "Iterator"}[legacy])
				return
			}
			s.ItemProcessor, s.LegacyIterator = d.branch(p, r, true), legacy
		}
	}
	fs["ItemProcessor"] = processor(false)
	fs["Iterator"] = processor(true)
	fs["ItemsPath"] = func(p string, r json.RawMessage) { s.ItemsPath = d.pathField(p, r) }
	fs["Items"] = func(p string, r json.RawMessage) { s.Items = d.value(p, r) }
	fs["ItemSelector"] = func(p string, r json.RawMessage) { s.ItemSelector = d.value(p, r) }
	fs["Parameters"] = func(p string, r json.RawMessage) { s.Parameters = d.value(p, r) }
	fs["ItemReader"] = func(p string, r json.RawMessage) { s.ItemReader = d.itemReader(p, r) }
	fs["ItemBatcher"] = func(p string, r json.RawMessage) { s.ItemBatcher = d.itemBatcher(p, r) }
	fs["ResultWriter"] = func(p string, r json.RawMessage) { s.ResultWriter = d.resultWriter(p, r) }
	fs["MaxConcurrency"] = func(p string, r json.RawMessage) { s.MaxConcurrency = d.intExpr(p, r) }
	fs["MaxConcurrencyPath"] = func(p string, r json.RawMessage) { s.MaxConcurrencyPath = d.str(p, r) }
	fs["ToleratedFailurePercentage"] = func(p string, r json.RawMessage) { s.ToleratedFailurePercentage = d.floatExpr(p, r) }
	fs["ToleratedFailurePercentagePath"] = func(p string, r json.RawMessage) { s.ToleratedFailurePercentagePath = d.str(p, r) }
	fs["ToleratedFailureCount"] = func(p string, r json.RawMessage) { s.ToleratedFailureCount = d.intExpr(p, r) }
	fs["ToleratedFailureCountPath"] = func(p string, r json.RawMessage) { s.ToleratedFailureCountPath = d.str(p, r) }
	fs["Label"] = func(p string, r json.RawMessage) { s.Label = d.str(p, r) }
	fs["ResultSelector"] = func(p string, r json.RawMessage) { s.ResultSelector = d.value(p, r) }
	fs["ResultPath"] = func(p string, r json.RawMessage) { s.ResultPath = d.pathField(p, r) }
	fs["Retry"] = func(p string, r json.RawMessage) { s.Retry = d.retriers(p, r) }
	fs["Catch"] = func(p string, r json.RawMessage) { s.Catch = d.catchers(p, r) }
	return fs
}

func (d *decoder) processorConfig(ptr string, raw json.RawMessage) *ProcessorConfig {
	c := &ProcessorConfig{}
	d.fields(ptr, raw, fieldSet{
		"Mode":          func(p string, r json.RawMessage) { c.Mode = d.str(p, r) },
		"ExecutionType": func(p string, r json.RawMessage) { c.ExecutionType = d.str(p, r) },
	}, unknownField)
	return c
}

func (d *decoder) itemReader(ptr string, raw json.RawMessage) *ItemReader {
	ir := &ItemReader{}
	d.fields(ptr, raw, fieldSet{
		"Resource":     func(p string, r json.RawMessage) { ir.Resource = d.str(p, r) },
		"Parameters":   func(p string, r json.RawMessage) { ir.Parameters = d.value(p, r) },
		"Arguments":    func(p string, r json.RawMessage) { ir.Arguments = d.value(p, r) },
		"ReaderConfig": func(p string, r json.RawMessage) { ir.ReaderConfig = d.object(p, r) },
	}, unknownField)
	return ir
}

func (d *decoder) itemBatcher(ptr string, raw json.RawMessage) *ItemBatcher {
	ib := &ItemBatcher{}
	d.fields(ptr, raw, fieldSet{
		"MaxItemsPerBatch":          func(p string, r json.RawMessage) { ib.MaxItemsPerBatch = d.intExpr(p, r) },
		"MaxItemsPerBatchPath":      func(p string, r json.RawMessage) { ib.MaxItemsPerBatchPath = d.str(p, r) },
		"MaxInputBytesPerBatch":     func(p string, r json.RawMessage) { ib.MaxInputBytesPerBatch = d.intExpr(p, r) },
		"MaxInputBytesPerBatchPath": func(p string, r json.RawMessage) { ib.MaxInputBytesPerBatchPath = d.str(p, r) },
		"BatchInput":                func(p string, r json.RawMessage) { ib.BatchInput = d.value(p, r) },
	}, unknownField)
	return ib
}

func (d *decoder) resultWriter(ptr string, raw json.RawMessage) *ResultWriter {
	rw := &ResultWriter{}
	d.fields(ptr, raw, fieldSet{
		"Resource":     func(p string, r json.RawMessage) { rw.Resource = d.str(p, r) },
		"Parameters":   func(p string, r json.RawMessage) { rw.Parameters = d.value(p, r) },
		"Arguments":    func(p string, r json.RawMessage) { rw.Arguments = d.value(p, r) },
		"WriterConfig": func(p string, r json.RawMessage) { rw.WriterConfig = d.object(p, r) },
	}, unknownField)
	return rw
}

func encodeMap(o *object, s *Map) {
	o.value("Items", s.Items)
	o.path("ItemsPath", s.ItemsPath)
	if s.ItemReader != nil {
		var r object
		r.str("Resource", s.ItemReader.Resource)
		r.value("Parameters", s.ItemReader.Parameters)
		r.value("Arguments", s.ItemReader.Arguments)
		if s.ItemReader.ReaderConfig != nil {
			r.add("ReaderConfig", s.ItemReader.ReaderConfig)
		}
		o.add("ItemReader", r)
	}
	o.value("Parameters", s.Parameters)
	o.value("ItemSelector", s.ItemSelector)
	if s.ItemBatcher != nil {
		var b object
		b.intExpr("MaxItemsPerBatch", s.ItemBatcher.MaxItemsPerBatch)
		b.str("MaxItemsPerBatchPath", s.ItemBatcher.MaxItemsPerBatchPath)
		b.intExpr("MaxInputBytesPerBatch", s.ItemBatcher.MaxInputBytesPerBatch)
		b.str("MaxInputBytesPerBatchPath", s.ItemBatcher.MaxInputBytesPerBatchPath)
		b.value("BatchInput", s.ItemBatcher.BatchInput)
		o.add("ItemBatcher", b)
	}
	if s.ItemProcessor != nil {
		key := "ItemProcessor"
		if s.LegacyIterator {
			key = "Iterator"
		}
		o.add(key, encodeBranch(s.ItemProcessor))
	}
	o.intExpr("MaxConcurrency", s.MaxConcurrency)
	o.str("MaxConcurrencyPath", s.MaxConcurrencyPath)
	o.floatExpr("ToleratedFailurePercentage", s.ToleratedFailurePercentage)
	o.str("ToleratedFailurePercentagePath", s.ToleratedFailurePercentagePath)
	o.intExpr("ToleratedFailureCount", s.ToleratedFailureCount)
	o.str("ToleratedFailureCountPath", s.ToleratedFailureCountPath)
	o.str("Label", s.Label)
	o.value("ResultSelector", s.ResultSelector)
	if s.ResultWriter != nil {
		var w object
		w.str("Resource", s.ResultWriter.Resource)
		w.value("Parameters", s.ResultWriter.Parameters)
		w.value("Arguments", s.ResultWriter.Arguments)
		if s.ResultWriter.WriterConfig != nil {
			w.add("WriterConfig", s.ResultWriter.WriterConfig)
		}
		o.add("ResultWriter", w)
	}
	o.path("ResultPath", s.ResultPath)
	encodeRetry(o, s.Retry, s.Catch)
}

func encodeProcessorConfig(c *ProcessorConfig) object {
	var o object
	o.str("Mode", c.Mode)
	o.str("ExecutionType", c.ExecutionType)
	return o
}

// Distributed reports whether the Map runs its items as child executions
// (ProcessorConfig Mode DISTRIBUTED) rather than inline.
func (s *Map) Distributed() bool {
	return s.ItemProcessor != nil && s.ItemProcessor.ProcessorConfig != nil &&
		s.ItemProcessor.ProcessorConfig.Mode == "DISTRIBUTED"
}

func (v *validator) mapState(ptr string, sc *scope, s *Map, ql QueryLanguage) {
	processorKey := "ItemProcessor"
	if s.LegacyIterator {
		processorKey = "Iterator"
	}
	if s.ItemsPath != nil && ql == JSONata {
		v.jsonPathOnly(ptr+"/ItemsPath", "ItemsPath")
	} else {
		v.pathField(ptr+"/ItemsPath", s.ItemsPath)
	}
	switch items := s.Items.(type) {
	case nil:
	case []any:
		if ql != JSONata {
			v.jsonataOnly(ptr+"/Items", "Items")
		}
	case string:
		if ql != JSONata {
			v.jsonataOnly(ptr+"/Items", "Items")
		} else if !isExpr(items) {
			v.addf(ptr+"/Items", "must be an array or a JSONata expression \"{%% ... %%}\", got %s", quote(items))
		}
	default:
		if ql != JSONata {
			v.jsonataOnly(ptr+"/Items", "Items")
		} else {
			v.addf(ptr+"/Items", "must be an array or a JSONata expression, got %s", jsonType(items))
		}
	}
	if r := s.ItemReader; r != nil {
		v.resource(ptr+"/ItemReader/Resource", r.Resource, true)
		v.parameters(ptr+"/ItemReader/Parameters", ql, "Parameters", r.Parameters)
		v.arguments(ptr+"/ItemReader/Arguments", ql, r.Arguments)
	}
	v.parameters(ptr+"/Parameters", ql, "Parameters", s.Parameters)
	if s.Parameters != nil && s.ItemSelector != nil {
		v.addf(ptr+"/ItemSelector", "cannot be used with Parameters")
	}
	if ql == JSONPath {
		v.template(ptr+"/ItemSelector", s.ItemSelector)
	}
	if b := s.ItemBatcher; b != nil {
		v.intExpr(ptr+"/ItemBatcher/MaxItemsPerBatch", ql, b.MaxItemsPerBatch, 1)
		v.pathIn(ptr+"/ItemBatcher/MaxItemsPerBatchPath", ql, "MaxItemsPerBatchPath", b.MaxItemsPerBatchPath)
		v.intExpr(ptr+"/ItemBatcher/MaxInputBytesPerBatch", ql, b.MaxInputBytesPerBatch, 1)
		v.pathIn(ptr+"/ItemBatcher/MaxInputBytesPerBatchPath", ql, "MaxInputBytesPerBatchPath", b.MaxInputBytesPerBatchPath)
		if ql == JSONPath {
			v.template(ptr+"/ItemBatcher/BatchInput", b.BatchInput)
		}
	}
	if s.ItemProcessor == nil {
		v.addf(ptr+"/ItemProcessor", "missing required field")
	} else {
		v.processorConfig(ptr+"/"+processorKey+"/ProcessorConfig", s.ItemProcessor.ProcessorConfig)
		v.branch(ptr+"/"+processorKey, s.ItemProcessor)
	}
	if !s.Distributed() {
		// An inline Map keeps its items and results in the execution;
		// reading from or writing to S3 is what distributed mode is for.
		for _, f := range []struct {
			key string
			set bool
		}{{"ItemReader", s.ItemReader != nil}, {"ItemBatcher", s.ItemBatcher != nil}, {"ResultWriter", s.ResultWriter != nil}} {
			if f.set {
				v.addf(ptr+"/"+f.key, "is only supported by a DISTRIBUTED Map")
			}
		}
	}
	v.intExpr(ptr+"/MaxConcurrency", ql, s.MaxConcurrency, 0)
	if s.MaxConcurrency != nil && s.MaxConcurrencyPath != "" {
		v.addf(ptr+"/MaxConcurrencyPath", "cannot be used with MaxConcurrency")
	}
	v.pathIn(ptr+"/MaxConcurrencyPath", ql, "MaxConcurrencyPath", s.MaxConcurrencyPath)
	if p := s.ToleratedFailurePercentage; p != nil {
		if p.Expr != "" {
			v.exprIn(ptr+"/ToleratedFailurePercentage", ql, p.Expr)
		} else if p.Value < 0 || p.Value > 100 {
			v.addf(ptr+"/ToleratedFailurePercentage", "must be between 0 and 100, got %v", p.Value)
		}
		if s.ToleratedFailurePercentagePath != "" {
			v.addf(ptr+"/ToleratedFailurePercentagePath", "cannot be used with ToleratedFailurePercentage")
		}
	}
	v.pathIn(ptr+"/ToleratedFailurePercentagePath", ql, "ToleratedFailurePercentagePath", s.ToleratedFailurePercentagePath)
	v.intExpr(ptr+"/ToleratedFailureCount", ql, s.ToleratedFailureCount, 0)
	if s.ToleratedFailureCount != nil && s.ToleratedFailureCountPath != "" {
		v.addf(ptr+"/ToleratedFailureCountPath", "cannot be used with ToleratedFailureCount")
	}
	v.pathIn(ptr+"/ToleratedFailureCountPath", ql, "ToleratedFailureCountPath", s.ToleratedFailureCountPath)
	v.parameters(ptr+"/ResultSelector", ql, "ResultSelector", s.ResultSelector)
	if w := s.ResultWriter; w != nil {
		v.resource(ptr+"/ResultWriter/Resource", w.Resource, false)
		v.parameters(ptr+"/ResultWriter/Parameters", ql, "Parameters", w.Parameters)
		v.arguments(ptr+"/ResultWriter/Arguments", ql, w.Arguments)
	}
	v.resultPathIn(ptr+"/ResultPath", ql, s.ResultPath)
	v.retry(ptr+"/Retry", s.Retry)
	v.catch(ptr+"/Catch", sc, ql, s.Catch)
}

func (v *validator) processorConfig(ptr string, c *ProcessorConfig) {
	if c == nil {
		return
	}
	switch c.Mode {
	case "", "INLINE":
		if c.ExecutionType != "" {
			v.addf(ptr+"/ExecutionType", "is only supported by a DISTRIBUTED Map")
		}
	case "DISTRIBUTED":
		switch c.ExecutionType {
		case "STANDARD", "EXPRESS":
		case "":
			v.addf(ptr+"/ExecutionType", "missing required field")
		default:
			v.addf(ptr+"/ExecutionType", "must be \"STANDARD\" or \"EXPRESS\", got %q", c.ExecutionType)
		}
	default:
		v.addf(ptr+"/Mode", "must be \"INLINE\" or \"DISTRIBUTED\", got %q", c.Mode)
	}
}

// resource checks an ItemReader's or ResultWriter's Resource.
func (v *validator) resource(ptr, arn string, required bool) {
	switch {
	case arn == "" && required:
		v.addf(ptr, "missing required field")
	case arn != "" && !validARN(arn):
		v.addf(ptr, "not a valid ARN: %s", quote(arn))
	}
}
